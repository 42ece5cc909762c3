"""Resume, interruption, distributed training, safe checkpoint loading on
every route, and errors that stop a run."""
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, REPO_ROOT, RunsCode
from mmdks.apis import CheckpointError, check_checkpoint_fits
from mmdks.apis.checkpoint_loader import load_from_weights_only
from mmdks.utils import CHECKPOINT_SAFE_GLOBALS, latest_scalars

ENV = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
TRAIN = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py')]
TEST = [sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py')]


def write_small_config(path, data_root: str, max_epochs: int = 3) -> str:
    """DKS ResNet-18 on 32x32 crops, seeded and deterministic: two runs of
    it give bit-identical weights. Training draws random augmentations in
    the main process (``num_workers=0``, the recipes' RandomResizedCrop and
    flip) and validates after every epoch."""
    base = osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py')
    pipelines = {
        'train': ("[dict(type='LoadImageFromFile'), "
                  "dict(type='RandomResizedCrop', scale=32), "
                  "dict(type='RandomFlip', prob=0.5, direction='horizontal'),"
                  " dict(type='PackInputs')]"),
        'val': ("[dict(type='LoadImageFromFile'), "
                "dict(type='Resize', scale=32), dict(type='PackInputs')]"),
    }
    loaders = ''.join(
        f"{split}_dataloader = dict(batch_size=4, num_workers=0, "
        "persistent_workers=False, "
        f"dataset=dict(data_root='{data_root}', "
        f"pipeline={pipelines['train' if split == 'train' else 'val']}))\n"
        for split in ('train', 'val', 'test'))
    path.write_text(
        f"_base_ = '{base}'\n" + loaders +
        f"train_cfg = dict(max_epochs={max_epochs}, val_interval=1)\n"
        "randomness = dict(seed=0, deterministic=True)\n"
        "env_cfg = dict(dist_cfg=dict(backend='gloo'))\n"
        "default_hooks = dict(logger=dict(interval=1))\n")
    return str(path)


def run(cmd, **kwargs):
    return subprocess.run(
        cmd, env=ENV, capture_output=True, text=True, timeout=600, **kwargs)


def load(path: str) -> dict:
    return torch.load(path, map_location='cpu')  # weights-only (default)


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key in a['state_dict']:
        assert torch.equal(a['state_dict'][key], b['state_dict'][key]), key
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys() and state_a
    for idx in state_a:
        for name, value in state_a[idx].items():
            assert torch.equal(value, state_b[idx][name]), (idx, name)


@pytest.fixture(scope='module')
def uninterrupted(imagenet_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp('uninterrupted')
    cfg = write_small_config(root / 'cfg.py', imagenet_folder)
    result = run(TRAIN + [cfg, '--work-dir', str(root / 'work')])
    assert result.returncode == 0, result.stderr[-3000:]
    return cfg, str(root / 'work')


def test_train_tool_drives_a_warm_up_the_config_did_not_hook(
        imagenet_folder, tmp_path):
    # 8 images, batch 4: iteration 1 is step 0 of a 4-step ramp (alpha 0),
    # iteration 2 step 1 (alpha / 4).
    cfg = write_small_config(tmp_path / 'cfg.py', imagenet_folder,
                             max_epochs=1)
    with open(cfg, 'a') as f:
        f.write('model = dict(aux_head=dict(synergy_loss=dict('
                'warmup_iters=4)))\n')
    work = str(tmp_path / 'work')
    result = run(TRAIN + [cfg, '--work-dir', work])
    assert result.returncode == 0, result.stderr[-3000:]
    synergy = [r['loss_synergy'] for r in latest_scalars(work) if 'iter' in r]
    assert synergy[0] == 0 and synergy[1] > 0


def test_sigkill_then_resume_equals_an_uninterrupted_run(
        uninterrupted, tmp_path):
    cfg, reference = uninterrupted
    work = tmp_path / 'work'
    proc = subprocess.Popen(
        TRAIN + [cfg, '--work-dir', str(work)], env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = work / 'last_checkpoint'
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'finished before the kill'
    saved = last.read_text().strip()
    epoch = int(osp.basename(saved)[len('epoch_'):-len('.pth')])
    assert epoch < 3
    # What a kill during the next save leaves: a truncated file that
    # last_checkpoint does not name.
    with open(saved, 'rb') as f:
        head = f.read(4096)
    (work / f'epoch_{epoch + 1}.pth').write_bytes(head)

    result = run(TRAIN + [cfg, '--work-dir', str(work), '--resume'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'resumed epoch: {epoch}' in result.stdout + result.stderr
    assert_same_training_state(
        load(osp.join(reference, 'epoch_3.pth')),
        load(str(work / 'epoch_3.pth')))

    # Read across both sessions, the log is the uninterrupted run's: the
    # same losses at the same iterations, once each. The validation of the
    # epoch saved last is there if the kill came after it.
    def logged(work_dir):
        return [{k: v for k, v in r.items() if 'time' not in k}
                for r in latest_scalars(work_dir)]

    expected = logged(reference)
    got = logged(str(work))
    assert [r for r in got if 'iter' in r] == \
        [r for r in expected if 'iter' in r]
    validations = [r for r in expected if 'iter' not in r]
    assert [r for r in got if 'iter' not in r] in (validations, [
        r for r in validations if r['step'] != epoch])


def test_mmengine_checkpoints_need_exactly_the_allowlist(uninterrupted):
    _, reference = uninterrupted
    ckpt = osp.join(reference, 'epoch_1.pth')
    bare = subprocess.run(
        [sys.executable, '-c', f'import torch; torch.load({ckpt!r})'],
        capture_output=True, text=True)
    assert bare.returncode != 0 and 'Unsupported global' in bare.stderr
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    allowed = {
        name if isinstance(entry, tuple) else
        f'{entry.__module__}.{entry.__qualname__}'
        for entry in CHECKPOINT_SAFE_GLOBALS
        for name in ([entry[1]] if isinstance(entry, tuple) else [None])
    }
    assert unsafe <= allowed
    message_hub = load(ckpt)['message_hub']
    assert message_hub['log_scalars']['train/lr'].current() > 0


def test_no_unsafe_loading_anywhere():
    for folder in ('mmdks', 'tools'):
        for dirpath, _, files in os.walk(osp.join(REPO_ROOT, folder)):
            for name in files:
                if name.endswith('.py'):
                    with open(osp.join(dirpath, name)) as f:
                        assert 'weights_only=False' not in f.read(), name


def test_allowlisted_getattr_serves_only_history_buffer_methods(tmp_path):
    import pickle

    from mmengine.logging import HistoryBuffer

    class Sneaky:
        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = str(tmp_path / 'sneaky.pth')
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(path)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def evil_checkpoint(path: str, marker: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'state_dict': {}, 'meta': RunsCode(marker)}, path)
    return path


# (command, where the checkpoint is, environment); local files given by
# --resume and load_from take the same check as last_checkpoint's.
ROUTES = [
    ('resume', 'url', {}),
    ('load_from', 'url', {}),
    ('test', 'file', {}),
    ('test', 'url', {}),
    ('auto_resume', 'last_checkpoint', {}),
    # torch's override of its default; mmdks asks for weights-only itself.
    ('auto_resume', 'last_checkpoint', {
        'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'
    }),
]


@pytest.mark.parametrize(
    'command,where,env',
    ROUTES,
    ids=[f'{c}-{w}' + ('-forced' if e else '') for c, w, e in ROUTES])
def test_code_in_a_checkpoint_is_never_run(command, where, env,
                                           uninterrupted, http_root,
                                           tmp_path):
    cfg, _ = uninterrupted
    marker = str(tmp_path / 'code_ran')
    evil = evil_checkpoint(str(tmp_path / 'evil.pth'), marker)
    served, url = http_root
    shutil.copy(evil, osp.join(served, f'{tmp_path.name}.pth'))
    checkpoint = f'{url}/{tmp_path.name}.pth' if where == 'url' else evil
    work = str(tmp_path / 'work')
    if where == 'last_checkpoint':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(evil)
    cmd = {
        'resume': TRAIN + [cfg, '--work-dir', work, '--resume', checkpoint],
        'auto_resume': TRAIN + [cfg, '--work-dir', work, '--resume'],
        'load_from': TRAIN + [cfg, '--work-dir', work, '--cfg-options',
                              f'load_from={checkpoint}'],
        'test': TEST + [cfg, checkpoint, '--work-dir', work],
    }[command]
    result = subprocess.run(
        cmd, env=dict(ENV, **env), capture_output=True, text=True,
        timeout=600)
    assert result.returncode != 0
    assert last_line(result) == (
        f'error: refusing {checkpoint}: its pickle calls posix.mkdir, which '
        'could run code; it was not loaded')
    assert not osp.exists(marker)
    assert not glob.glob(osp.join(work, '*.pth'))


def test_mmengine_loads_every_scheme_with_the_safe_loader(tmp_path):
    assert set(CheckpointLoader._schemes.values()) == \
        {load_from_weights_only}
    # A local path that merely contains '://' is a local path, checked.
    marker = str(tmp_path / 'code_ran')
    evil = evil_checkpoint(str(tmp_path / 'runs' / 'x://evil.pth'), marker)
    with pytest.raises(CheckpointError, match='refusing'):
        _load_checkpoint(evil)
    with pytest.raises(CheckpointError, match='refusing'):
        check_checkpoint_fits(torch.nn.Linear(1, 1), evil)
    with pytest.raises(CheckpointError, match="cannot read pavi:// safely"):
        _load_checkpoint('pavi://model/x.pth')
    assert not osp.exists(marker)


def test_a_checkpoint_over_http_is_tested(uninterrupted, http_root,
                                          tmp_path):
    """Safety keeps URLs working: a training checkpoint (message hub and
    all) over HTTP passes the check and MMEngine loads and tests it."""
    cfg, reference = uninterrupted
    served, url = http_root
    shutil.copy(osp.join(reference, 'epoch_3.pth'),
                osp.join(served, 'good_epoch_3.pth'))
    checkpoint = f'{url}/good_epoch_3.pth'
    result = run(TEST + [cfg, checkpoint, '--work-dir', str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'Load checkpoint from {checkpoint}' in result.stdout
    assert 'accuracy/top1' in result.stdout


def test_pretrained_init_cfg_loads_urls_safely(uninterrupted, http_root,
                                               tmp_path):
    cfg_path, reference = uninterrupted
    served, url = http_root
    marker = str(tmp_path / 'code_ran')
    evil_checkpoint(osp.join(served, 'pretrained_evil.pth'), marker)
    shutil.copy(osp.join(reference, 'epoch_1.pth'),
                osp.join(served, 'pretrained.pth'))
    cfg = Config.fromfile(cfg_path)

    def backbone_from(name: str) -> torch.nn.Module:
        cfg.model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=f'{url}/{name}', prefix='backbone')
        model = MODELS.build(cfg.model)
        model.init_weights()
        return model.backbone

    with pytest.raises(CheckpointError, match='refusing .*was not loaded'):
        backbone_from('pretrained_evil.pth')
    assert not osp.exists(marker)
    trained = load(osp.join(reference, 'epoch_1.pth'))['state_dict']
    for key, value in backbone_from('pretrained.pth').state_dict().items():
        assert torch.equal(value, trained[f'backbone.{key}']), key


def test_model_zoo_names_go_through_the_safe_loader(http_root, tmp_path,
                                                    monkeypatch):
    """``open-mmlab://NAME`` resolves, through MMEngine's table in
    MMENGINE_HOME, to a URL or to a file there; both are loaded safely."""
    served, url = http_root
    marker = str(tmp_path / 'code_ran')
    evil_checkpoint(osp.join(served, 'zoo_evil.pth'), marker)
    evil_checkpoint(str(tmp_path / 'zoo_evil.pth'), marker)
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'good.pth')
    (tmp_path / 'open_mmlab.json').write_text(json.dumps({
        'evil_url': f'{url}/zoo_evil.pth',
        'evil_file': 'zoo_evil.pth',
        'good': 'good.pth'
    }))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path))
    for name in ('evil_url', 'evil_file'):
        with pytest.raises(CheckpointError, match='refusing'):
            _load_checkpoint(f'open-mmlab://{name}')
    assert not osp.exists(marker)
    assert torch.equal(
        _load_checkpoint('openmmlab://good')['state_dict']['w'],
        torch.ones(2))
    with pytest.raises(CheckpointError, match="no open-mmlab:// model"):
        _load_checkpoint('open-mmlab://absent')


def test_petrel_locations_go_through_the_safe_loader(tmp_path, monkeypatch):
    """``s3://`` locations are fetched by MMEngine's Petrel backend (here a
    stand-in that serves ``tmp_path``) and then loaded safely."""
    from mmengine.fileio import io as fileio
    from mmengine.fileio.backends import backends

    class FolderAsPetrel(LocalBackend):

        def __init__(self, **kwargs):
            super().__init__()

        @contextlib.contextmanager
        def get_local_path(self, filepath):
            yield str(tmp_path / filepath.split('://', 1)[1])

    monkeypatch.setitem(backends, 'petrel', FolderAsPetrel)
    monkeypatch.setattr(fileio, 'backend_instances', {})
    marker = str(tmp_path / 'code_ran')
    evil_checkpoint(str(tmp_path / 'bucket' / 'evil.pth'), marker)
    with pytest.raises(CheckpointError, match='refusing s3://bucket/evil'):
        _load_checkpoint('s3://bucket/evil.pth')
    assert not osp.exists(marker)


def test_resume_with_an_empty_last_checkpoint(uninterrupted, tmp_path):
    cfg, _ = uninterrupted
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text('\n')
    result = run(TRAIN + [cfg, '--work-dir', str(work), '--resume'])
    assert result.returncode != 0
    assert last_line(result) == (
        f'error: {work}/last_checkpoint is empty; write the path of the '
        'checkpoint to resume from into it, or pass --resume CHECKPOINT')


def test_a_nan_loss_stops_training(uninterrupted, tmp_path):
    """std = 0 makes every input inf: the first loss is NaN."""
    cfg, _ = uninterrupted
    work = str(tmp_path / 'work')
    result = run(TRAIN + [cfg, '--work-dir', work, '--cfg-options',
                          'data_preprocessor.std=[0,0,0]'])
    assert result.returncode != 0
    assert last_line(result).startswith(
        'error: the training loss is not finite at epoch 1, iteration 1 ')
    assert 'loss_synergy=nan' in last_line(result)
    assert 'optim_wrapper.optimizer.lr' in last_line(result)
    assert not glob.glob(osp.join(work, '*.pth'))


def test_config_errors_are_one_line(uninterrupted, tmp_path):
    cfg, _ = uninterrupted
    result = run(TRAIN + [cfg, '--work-dir', str(tmp_path), '--cfg-options',
                          'model.aux_head.synergy_loss.alpha=inf'])
    assert result.returncode == 1
    assert last_line(result).startswith(
        'error: SynergyLoss: alpha=inf must be a finite number')
    assert 'Traceback' not in result.stderr


def test_check_checkpoint_fits_table(uninterrupted, tmp_path):
    cfg, reference = uninterrupted
    model = MODELS.build(Config.fromfile(cfg).model)
    good = osp.join(reference, 'epoch_1.pth')
    check_checkpoint_fits(model, good)
    state = load(good)['state_dict']

    truncated = tmp_path / 'truncated.pth'
    with open(good, 'rb') as f:
        truncated.write_bytes(f.read(10000))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    cases = {
        str(truncated): 'truncated or corrupt',
        str(text): 'not a PyTorch checkpoint',
        str(tmp_path / 'absent.pth'): 'does not exist',
        str(tmp_path): 'is a directory',
    }
    nonfinite = dict(state)
    nonfinite['backbone.bn1.running_var'] = torch.full((64, ), float('inf'))
    nonfinite['head.fc.bias'] = torch.full((1000, ), float('nan'))
    bad_states = {
        'shape': ({**state, 'head.fc.weight': torch.zeros(10, 512)},
                  'shape mismatch'),
        'unexpected': ({**state, 'extra.weight': torch.zeros(1)},
                       'unexpected keys: extra.weight'),
        'missing main': ({k: v for k, v in state.items()
                          if not k.startswith('backbone.layer4.')},
                         'missing keys: backbone.layer4'),
        'nonfinite': (nonfinite, r'has NaN or inf in 2 tensors: '
                      r'backbone\.bn1\.running_var, head\.fc\.bias; .* '
                      '--allow-nonfinite'),
    }
    for name, (bad, message) in bad_states.items():
        path = str(tmp_path / f'{name}.pth')
        torch.save({'state_dict': bad}, path)
        cases[path] = message
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            check_checkpoint_fits(model, path)
    check_checkpoint_fits(
        model, str(tmp_path / 'nonfinite.pth'), allow_nonfinite=True)
    # A plain model's checkpoint lacks only the DKS parts: a valid start.
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if not k.startswith(('aux_neck.',
                                                    'aux_head.'))}}, plain)
    check_checkpoint_fits(model, plain)


def test_tools_refuse_a_checkpoint_of_another_model(uninterrupted, tmp_path):
    cfg, reference = uninterrupted
    state = load(osp.join(reference, 'epoch_1.pth'))['state_dict']
    wrong = str(tmp_path / 'wrong.pth')
    torch.save({'state_dict': {**state, 'head.fc.weight': torch.zeros(
        10, 512)}}, wrong)
    result = run(TEST + [cfg, wrong, '--work-dir', str(tmp_path / 'w')])
    assert result.returncode != 0
    assert last_line(result).startswith('error:') and \
        'head.fc.weight' in last_line(result)


def test_bf16_autocast_training_step_is_finite():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    from mmpretrain.structures import DataSample
    inputs = torch.randn(2, 3, 32, 32) * 100
    samples = [DataSample().set_gt_label(i) for i in (3, 7)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(inputs, samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters()
        if p.grad is not None)


def test_branches_follow_the_backbone_norm():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py'))
    cfg.model.backbone.norm_cfg = dict(type='SyncBN')
    model = MODELS.build(cfg.model)
    branch_norms = [
        m for m in model.aux_neck.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert branch_norms and all(
        isinstance(m, torch.nn.SyncBatchNorm) for m in branch_norms)


RANK_DUMP_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class DumpRankState(Hook):
    """Save each rank's model state after training, with the names of its
    parameters, its device and the norm layers of its branches."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') \\
            else runner.model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        norms = sorted({
            type(m).__name__ for m in model.aux_neck.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})
        meta = dict(device=next(model.parameters()).device.type, norms=norms,
                    params=[k for k, _ in model.named_parameters()])
        torch.save(dict(state=state, meta=meta),
                   f'{self.out_dir}/rank{get_rank()}.pt')
'''


def write_rank_dump_config(tmp_path, data_root: str, extra: str = '') -> str:
    """Two epochs of the small config, each rank dumping its state into
    ``tmp_path`` (``rank_dump`` must be importable: put ``tmp_path`` on
    PYTHONPATH). With 8 images, batch 4 and 2 ranks, an epoch is one
    iteration a rank: a parameter without gradient would make DDP fail at
    the second."""
    (tmp_path / 'rank_dump.py').write_text(RANK_DUMP_HOOK)
    base = write_small_config(tmp_path / 'base.py', data_root, max_epochs=2)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        f"_base_ = '{base}'\n" + extra +
        "custom_imports = dict(imports=['mmdks', 'rank_dump'])\n"
        f"custom_hooks = [dict(type='DumpRankState', out_dir='{tmp_path}')]"
        "\n")
    return str(cfg)


def test_two_process_training_with_dist_train_sh(imagenet_folder, tmp_path):
    cfg = write_rank_dump_config(tmp_path, imagenet_folder)
    work = tmp_path / 'work'
    env = dict(ENV, PYTHONPATH=f'{tmp_path}:{REPO_ROOT}', PORT='29517')
    result = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), str(cfg), '2',
         '--work-dir', str(work)],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = (torch.load(str(tmp_path / f'rank{r}.pt'))
                    for r in range(2))
    # Parameters only: BN running stats stay per rank, as MMEngine's DDP
    # wrapper does not broadcast buffers.
    params = rank0['meta']['params']
    for key in params:
        assert torch.equal(rank0['state'][key], rank1['state'][key]), key
    assert sorted(p.name for p in work.glob('*.pth')) == \
        ['epoch_1.pth', 'epoch_2.pth']
    saved = load(str(work / 'epoch_2.pth'))['state_dict']
    assert all(torch.equal(saved[k], rank0['state'][k]) for k in params)


@pytest.mark.slow
def test_mmengine_compile_trains_with_the_eager_losses(imagenet_folder,
                                                       tmp_path):
    # `compile=True` is how the synergy loss gets fused (docs/benchmarks.md);
    # it must train the same model, not merely run.
    cfg = write_small_config(tmp_path / 'cfg.py', imagenet_folder,
                             max_epochs=1)
    records = {}
    for name, extra in (('eager', []),
                        ('compiled', ['--cfg-options', 'compile=True'])):
        work_dir = str(tmp_path / name)
        result = run(TRAIN + [cfg, '--work-dir', work_dir] + extra)
        assert result.returncode == 0, result.stderr[-3000:]
        records[name] = [r for r in latest_scalars(work_dir) if 'iter' in r]
    assert 'Model has been "compiled"' in result.stdout + result.stderr
    assert len(records['eager']) == len(records['compiled']) == 2
    for eager, compiled in zip(records['eager'], records['compiled']):
        for key in ('loss', 'loss_synergy', 'main/loss'):
            assert compiled[key] == pytest.approx(eager[key], rel=1e-4), key
