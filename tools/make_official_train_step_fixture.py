"""Make tests/fixtures/official_train_step: run ONE training step of the authors' MPM code (vvirgooo2/MPM HEAD, CPU, .cuda() patched out,
dropout off) for: pre-training (MPMmask2, 5*L2D+2*L3D), lifter fine-tuning (Model, VTE+centre),
refine stage (Model+refine, refine loss), 3D completion (MPMmask comp3d) and occluded 2D->3D
(MPMmask comp2dlift). Records init weights, batch, masks, train-mode outputs, loss, grads and the
updated state (params + BatchNorm running stats).

Needs a checkout of the authors' repository (github.com/vvirgooo2/MPM, HEAD 47ceae4) outside this
project; nothing of it is copied here, their modules are imported from the checkout. Run it in a
scratch folder (their option parser creates ./checkpoint):

    MPM_REPO=/path/to/MPM OUT_DIR=/path/to/out python tools/make_official_train_step_fixture.py

PoseAug's ``torchgeometry`` is stubbed (unused), ``.cuda()`` is a no-op, and the tube / random
masks are given to their step functions instead of their samplers (which reseed NumPy from OS
entropy). Their 3D completion branch calls ``MaskGen(opt, N)`` (a TypeError at HEAD,
docs/authors_code.md section 11.3); it gets the tube masks, as ``TubeMaskGen`` would.
"""
import os, sys, json, types
import numpy as np
import torch
from torch import nn

HERE = os.getcwd()
REPO = os.environ.get("MPM_REPO", os.path.join(HERE, "MPM"))
if not os.path.isfile(os.path.join(REPO, "model", "MPMLift.py")):
    sys.exit(f"set MPM_REPO to a checkout of the authors' MPM repository (not found: {REPO})")
sys.path.insert(0, REPO)

# ---- patch .cuda() out
torch.Tensor.cuda = lambda self, *a, **k: self
nn.Module.cuda = lambda self, *a, **k: self
torch.cuda.FloatTensor = torch.FloatTensor
sys.modules.setdefault("torchgeometry", types.ModuleType("torchgeometry"))  # PoseAug only, unused here

J, F, LAYERS, CH, DHID = 17, 27, 1, 16, 32
REFINE_UNITS = 64
import model.component.refine as refine_mod
refine_mod.fc_unit = REFINE_UNITS

sys.argv = ["x", "--MAE", "-f", str(F), "--n_joints", str(J), "--layers", str(LAYERS), "--channel", str(CH),
            "--d_hid", str(DHID), "-tmr", "0.6", "-smn", "5", "--train", "0"]
from common.opt import opts
opt_base = opts().parse()
from common.utils import define_actions
from model.MPMLift import MPMmask, MPMmask2
from model.MPM import Model
from model.component.refine import refine
import trainutils.pretrain_epoch as PE
import trainutils.finetune_epoch as FE
from safetensors.torch import save_file

OUT = os.environ.get("OUT_DIR", os.path.join(HERE, "out"))
os.makedirs(OUT, exist_ok=True)
actions = define_actions("*", "any")


def opt_for(**kw):
    o = types.SimpleNamespace(**vars(opt_base))
    for k, v in kw.items():
        setattr(o, k, v)
    o.shuffle = o.onlylift == 0 and o.comp3d == 0 and o.comp2dlift == 0
    return o


def no_dropout(m):
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0


def randomise(m, g):
    """Random BatchNorm affine + running stats (so parity on them is a real test)."""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):
            with torch.no_grad():
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))


def sd_of(m):
    return {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}


def grads_of(m):
    return {k: p.grad.detach().clone().contiguous() for k, p in m.named_parameters() if p.grad is not None}


def hook_outputs(m, store):
    def h(_mod, inp, out):
        store.append(tuple(o.detach().clone() for o in out) if isinstance(out, tuple) else out.detach().clone())
    return m.register_forward_hook(h)


def poses(seed, n):
    g = torch.Generator().manual_seed(seed)
    p2 = (torch.randn(n, F, J, 2, generator=g) * 0.3).float()
    p3 = (torch.randn(n, F, J, 3, generator=g) * 0.3).float()
    p3[:, :, 0] = 0
    return p2, p3


def random_st_mask(rng):
    s = np.zeros((F, J), bool)
    for k in range(F):
        s[k, rng.choice(J, 5, replace=False)] = True
    t = np.zeros(F)
    t[rng.choice(F, int(F * 0.6), replace=False)] = 1
    return s, t


manner3d = [[1, 2, 3], [14, 15, 16], [11, 12, 13], [4, 5, 6]]
manner2d = [[1, 2, 3, 4, 5, 6], [11, 12, 13, 14, 15, 16], [1, 2, 3, 14, 15, 16], [4, 5, 6, 11, 12, 13]]


def tube(rng, n, table, extra):
    s = np.zeros((n, J), bool)
    for k in range(n):
        d = k % 4 if k < 4 else extra
        if d < 4:
            s[k, table[d]] = True
        else:
            s[k, rng.choice(J, d - 3, replace=False)] = True
    return s


meta = {"n_joints": J, "frames": F, "layers": LAYERS, "channel": CH, "d_hid": DHID, "heads": 8,
        "refine_units": REFINE_UNITS, "stride_num": opt_base.stride_num, "torch": torch.__version__}

# ======================================================================= pre-training (MPMmask2)
def run_pretrain():
    torch.manual_seed(11)
    opt = opt_for(lr=1e-4)
    model = nn.DataParallel(MPMmask2(opt))
    randomise(model, torch.Generator().manual_seed(12))
    no_dropout(model)
    init = sd_of(model)
    p2, _ = poses(1, 4)
    _, p3 = poses(2, 4)
    rng = np.random.default_rng(3)
    s2, t2 = random_st_mask(rng)
    s3, t3 = random_st_mask(rng)
    PE.MaskGen = lambda *a, **k: (s2, s3, torch.from_numpy(t2).bool(), torch.from_numpy(t3).bool(), t2.copy(), t3.copy())
    outs = []
    h = hook_outputs(model.module, outs)
    opt_all = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=opt.lr, amsgrad=True)
    loss = PE.pretrain_epoch(opt, actions, [(p2.clone(), p3.clone(), torch.zeros(4, 9))], {"MAE": model}, opt_all, 1, {})
    h.remove()
    save_file(init, f"{OUT}/pretrain_init.safetensors")
    save_file(sd_of(model), f"{OUT}/pretrain_after.safetensors")
    save_file(grads_of(model), f"{OUT}/pretrain_grads.safetensors")
    return {"pretrain_pose_2d": p2.numpy(), "pretrain_pose_3d": p3.numpy(), "pretrain_spatial_mask_2d": s2,
            "pretrain_temporal_mask_2d": t2.astype(bool), "pretrain_spatial_mask_3d": s3,
            "pretrain_temporal_mask_3d": t3.astype(bool), "pretrain_out_2d": outs[0].numpy(),
            "pretrain_out_3d": outs[1].numpy(), "pretrain_loss": np.float64(loss)}


# ======================================================================= lifter (+ refine)
def run_lift(refine_stage):
    torch.manual_seed(21)
    opt = opt_for(MAE=False, lr=1e-4 if refine_stage else 7e-4, refine=refine_stage)
    model = {"trans": nn.DataParallel(Model(opt)), "refine": nn.DataParallel(refine(opt))}
    randomise(model["trans"], torch.Generator().manual_seed(22))
    for m in model.values():
        no_dropout(m)
    init_t, init_r = sd_of(model["trans"]), sd_of(model["refine"])
    p2, p3 = poses(4, 4)
    g = torch.Generator().manual_seed(5)
    gt = p3.clone()
    gt[:, :, 0] = torch.tensor([0.1, -0.2, 4.5]) + 0.1 * torch.randn(4, 1, 3, generator=g)  # absolute root (as their loader)
    cam = torch.zeros(4, 9)
    cam[:, 0:2] = 2.3 + 0.1 * torch.rand(4, 2, generator=g)
    cam[:, 2:4] = 0.02 * torch.randn(4, 2, generator=g)
    outs = []
    h = hook_outputs(model["trans"].module, outs)
    routs = []
    h2 = hook_outputs(model["refine"].module, routs)
    params = []
    for k in model:
        params += list(model[k].parameters())
    opt_all = torch.optim.Adam(params, lr=opt.lr, amsgrad=True)
    data = [(cam.clone(), gt.clone(), p2.clone(), ["all"] * 4, ["S1"] * 4, torch.ones(4), torch.zeros(4, 4), torch.zeros(4))]
    loss, _ = FE.train_epoch(opt, actions, data, model, opt_all, 1)
    h.remove()
    h2.remove()
    tag = "refine" if refine_stage else "lift"
    if not refine_stage:  # the refine stage starts from the same lifter weights (same seeds)
        save_file(init_t, f"{OUT}/{tag}_init.safetensors")
    save_file(sd_of(model["trans"]), f"{OUT}/{tag}_after.safetensors")
    save_file(grads_of(model["trans"]), f"{OUT}/{tag}_grads.safetensors")
    res = {f"{tag}_pose_2d": p2.numpy(), f"{tag}_pose_3d": gt.numpy(), f"{tag}_intrinsics": cam.numpy(),
           f"{tag}_out_center": outs[0][0].permute(0, 2, 3, 4, 1).reshape(4, -1, J, 3).numpy(),
           f"{tag}_out_all": outs[0][1].permute(0, 2, 3, 4, 1).reshape(4, -1, J, 3).numpy(),
           f"{tag}_loss": np.float64(loss)}
    if refine_stage:
        save_file(init_r, f"{OUT}/refine_head_init.safetensors")
        save_file(sd_of(model["refine"]), f"{OUT}/refine_head_after.safetensors")
        res["refine_out_refined"] = routs[0].numpy()
    return res


# ======================================================================= completion (MPMmask)
def run_completion(kind):
    torch.manual_seed(31)
    opt = opt_for(lr=2e-4, comp3d=int(kind == "complete3d"), comp2dlift=int(kind == "occluded2d"))
    model = nn.DataParallel(MPMmask(opt))
    randomise(model, torch.Generator().manual_seed(32))
    no_dropout(model)
    init = sd_of(model)
    p2, p3 = poses(6, 5)
    rng = np.random.default_rng(7)
    s2 = tube(rng, 5, manner2d, 9)
    s3 = tube(rng, 5, manner3d, 6)
    t0 = np.zeros(F)
    fn = lambda *a, **k: (torch.from_numpy(s2), torch.from_numpy(s3), torch.zeros(F).bool(), torch.zeros(F).bool(), t0.copy(), t0.copy())
    PE.MaskGen = fn      # their comp3d branch calls MaskGen(opt, N) (a TypeError at HEAD; docs/authors_code.md section 11.3): the tube masks
    PE.TubeMaskGen = fn
    outs = []
    h = hook_outputs(model.module, outs)
    opt_all = torch.optim.Adam(model.parameters(), lr=opt.lr, amsgrad=True)
    loss = PE.pretrain_epoch(opt, actions, [(p2.clone(), p3.clone(), torch.zeros(5, 9))], {"MAE": model}, opt_all, 1, {})
    h.remove()
    save_file(init, f"{OUT}/completion_init.safetensors")
    save_file(sd_of(model), f"{OUT}/{kind}_after.safetensors")
    save_file(grads_of(model), f"{OUT}/{kind}_grads.safetensors")
    res = {f"{kind}_pose_2d": p2.numpy(), f"{kind}_pose_3d": p3.numpy(), f"{kind}_loss": np.float64(loss)}
    if kind == "complete3d":
        res["complete3d_spatial_mask"] = s3
        res["complete3d_out_3d"] = outs[0].numpy()
    else:
        res["occluded2d_spatial_mask"] = s2
        res["occluded2d_out_2d"] = outs[0][0].numpy()
        res["occluded2d_out_3d"] = outs[0][1].numpy()
    return res


arrays = {}
arrays.update(run_pretrain())
arrays.update(run_lift(False))
arrays.update(run_lift(True))
arrays.update(run_completion("complete3d"))
arrays.update(run_completion("occluded2d"))
np.savez_compressed(f"{OUT}/train_step.npz", **arrays)
with open(f"{OUT}/meta.json", "w") as f:
    json.dump(meta, f, indent=1)
for k, v in arrays.items():
    print(k, getattr(v, "shape", v), v if np.ndim(v) == 0 else "")
