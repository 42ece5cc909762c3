"""``tools/strip_heads.py``: a DKS checkpoint becomes a plain MMPretrain model
that loads, predicts and tests without mmdks, and bad input never writes."""
import copy
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import mmpretrain
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, PROBE_SIZE, REPO_ROOT, run_script
from mmdks.apis import (CheckpointError, export_onnx, plain_model_config,
                        strip_checkpoint, strip_state_dict)

SHIPPED_CONFIG = osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py')
DKS34_CONFIG = osp.join(CONFIG_DIR, 'dks_resnet34_8xb32_in1k.py')
MMPRETRAIN_RESNET18 = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnet',
    'resnet18_8xb32_in1k.py')
CLASSES = tuple(f'class_{i}' for i in range(1000))
AUX = ('aux_neck.', 'aux_head.')
# Without /work/main on the path, and with ``import mmdks`` made to fail.
NO_MMDKS = "import sys; sys.modules['mmdks'] = None\n"


def env_without_mmdks() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in env.get('PYTHONPATH', '').split(os.pathsep)
        if p and osp.abspath(p) != REPO_ROOT)
    return env


def snapshot(folder: str) -> dict:
    """Every file in ``folder`` with its mtime and content hash."""
    if not osp.isdir(folder):
        return {}
    result = {}
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        with open(path, 'rb') as f:
            result[name] = (os.stat(path).st_mtime_ns,
                            hashlib.sha256(f.read()).hexdigest())
    return result


def build_model(cfg_path: str) -> torch.nn.Module:
    """The model of a config with its data preprocessor, as
    ``mmpretrain.apis.get_model`` builds it."""
    cfg = Config.fromfile(cfg_path)
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def dks_config(tmp_path_factory) -> str:
    """The shipped ResNet-18 DKS config with one-block branches: the tool
    does not depend on the branch design, and checkpoints shrink from 214 to
    84 MB."""
    path = tmp_path_factory.mktemp('config') / 'dks_resnet18_small.py'
    path.write_text(
        f'_base_ = {SHIPPED_CONFIG!r}\n'
        f'model = dict(aux_neck=dict(probe_size={PROBE_SIZE}, branches=[\n'
        '    dict(from_stage=1, num_blocks=[1, 1]),\n'
        '    dict(from_stage=2, num_blocks=[1])]))\n')
    return str(path)


@pytest.fixture(scope='module')
def dks_model(dks_config) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(dks_config)
    model.init_weights()
    # Non-trivial BN statistics, so a lost buffer would change the logits.
    for name, buf in model.named_buffers():
        if name.endswith('running_mean'):
            buf.normal_(0, 0.1)
        elif name.endswith('running_var'):
            buf.uniform_(0.5, 1.5)
    return model.eval()


def training_checkpoint(model: torch.nn.Module) -> dict:
    """What MMEngine saves, minus the globals only it needs."""
    return {
        'meta': {
            'epoch': 3,
            'dataset_meta': {
                'classes': CLASSES
            }
        },
        'state_dict': copy.deepcopy(model.state_dict()),
        'optimizer': {
            'state': {},
            'param_groups': [{
                'lr': 0.1
            }]
        },
        'message_hub': {
            'log_scalars': {}
        },
    }


@pytest.fixture(scope='module')
def source(tmp_path_factory, dks_model) -> str:
    path = str(tmp_path_factory.mktemp('src') / 'epoch_3.pth')
    torch.save(training_checkpoint(dks_model), path)
    return path


@pytest.fixture(scope='module')
def stripped(tmp_path_factory, dks_config, source) -> dict:
    out_dir = str(tmp_path_factory.mktemp('out'))
    return strip_checkpoint(
        dks_config, source, out_dir, onnx=True, shape=(32, 32))


def test_strip_state_dict():
    sd = {'aux_neck.a': 1, 'aux_neckx.b': 2, 'head.fc': 3, 'aux_head.c': 4}
    kept, dropped = strip_state_dict(sd, ('aux_neck', 'aux_head'))
    assert list(kept.items()) == [('aux_neckx.b', 2), ('head.fc', 3)]
    assert dropped == ['aux_neck.a', 'aux_head.c']


def test_outputs_and_summary(stripped, source, dks_model):
    out_dir = osp.dirname(stripped['outputs']['config'])
    assert stripped['outputs'] == {
        kind: osp.join(out_dir, f'epoch_3_plain.{ext}')
        for kind, ext in (('checkpoint', 'pth'), ('config', 'py'),
                          ('onnx', 'onnx'))
    }
    assert sorted(os.listdir(out_dir)) == sorted(
        osp.basename(p) for p in stripped['outputs'].values())
    ckpt = torch.load(stripped['outputs']['checkpoint'], weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert set(ckpt['meta']) == {
        'dataset_meta', 'source', 'source_sha256', 'mmdks_version', 'date'
    }
    assert ckpt['meta']['dataset_meta'] == {'classes': CLASSES}
    assert ckpt['meta']['source'] == osp.abspath(source)
    with open(source, 'rb') as f:
        assert ckpt['meta']['source_sha256'] == \
            hashlib.sha256(f.read()).hexdigest()
    assert ckpt['meta']['mmdks_version'] == mmdks.__version__

    full = dks_model.state_dict()
    assert not any(k.startswith(AUX) for k in ckpt['state_dict'])
    assert list(ckpt['state_dict']) == \
        [k for k in full if not k.startswith(AUX)]
    for key, value in ckpt['state_dict'].items():
        assert torch.equal(value, full[key]), key
    assert stripped['dropped_keys'] == len(full) - len(ckpt['state_dict'])
    assert stripped['dropped_prefixes'] == list(dks_model.auxiliary_modules)
    assert stripped['aux_mismatch'] == []
    assert stripped['params_before'] == \
        sum(p.numel() for p in dks_model.parameters())
    assert stripped['params_after'] == sum(
        p.numel() for n, p in dks_model.named_parameters()
        if not n.startswith(AUX))
    assert stripped['weights'] == 'state_dict'


def test_plain_config():
    cfg = Config.fromfile(SHIPPED_CONFIG)
    cfg.model.eval_branches = True
    plain = plain_model_config(cfg)
    assert plain.model.type == 'ImageClassifier'
    for field in ('aux_neck', 'aux_head', 'eval_branches'):
        assert field not in plain.model
    assert 'custom_imports' not in plain
    text = plain.pretty_text
    for name in ('mmdks', 'DKS', 'Synergy', 'aux_', 'eval_branches'):
        assert name not in text
    # Everything else is the DKS config's, untouched.
    assert set(plain) == set(cfg) - {'custom_imports'}
    for key in plain:
        if key != 'model':
            assert plain[key] == cfg[key], key
    # The model is the DKS model's minus the DKS parts, nothing rewritten.
    for key in plain.model:
        if key != 'type':
            assert plain.model[key] == cfg.model[key], key
    assert cfg.model.type == 'DKSClassifier'  # the input is not modified

    with pytest.raises(ValueError, match='not DKSClassifier'):
        plain_model_config(Config.fromfile(MMPRETRAIN_RESNET18))


def test_plain_config_drops_branch_metrics():
    cfg = Config.fromfile(SHIPPED_CONFIG)
    accuracy = dict(type='Accuracy', topk=(1, 5))
    cfg.test_evaluator = [accuracy, dict(type='BranchAccuracy', topk=1)]
    assert plain_model_config(cfg).test_evaluator == [accuracy]

    cfg.test_evaluator = dict(type='BranchAccuracy')
    with pytest.raises(ValueError, match="still names 'BranchAccuracy'"):
        plain_model_config(cfg)


def test_plain_config_drops_mmdks_hooks():
    cfg = Config.fromfile(SHIPPED_CONFIG)
    ema = dict(type='EMAHook')
    cfg.custom_hooks = [dict(type='SynergyWarmupHook'), ema]
    assert plain_model_config(cfg).custom_hooks == [ema]


def test_plain_model_gives_dks_logits(stripped, dks_model):
    model = build_model(stripped['outputs']['config'])
    ckpt = torch.load(stripped['outputs']['checkpoint'], weights_only=True)
    result = model.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = dks_model(inputs, mode='tensor')
        logits = model(inputs, mode='tensor')
    # The same weights run the same ops in the same order: bit-identical.
    assert torch.equal(logits, expected)


def test_loads_and_predicts_without_mmdks(stripped, dks_config, dks_model,
                                          imagenet_folder, tmp_path):
    """MMPretrain alone loads the outputs: no missing or unexpected keys,
    the DKS model's logits, and its class names."""
    inputs = torch.randn(2, 3, 32, 32)
    np.save(tmp_path / 'inputs.npy', inputs.numpy())
    image = osp.join(imagenet_folder, 'val', 'c1_0.JPEG')
    script = NO_MMDKS + textwrap.dedent(f"""
        import json, numpy as np, torch
        from mmpretrain.apis import ImageClassificationInferencer, get_model
        cfg, ckpt = {stripped['outputs']['config']!r}, \\
            {stripped['outputs']['checkpoint']!r}
        model = get_model(cfg, pretrained=ckpt).eval()
        state = torch.load(ckpt)  # torch's default, weights-only loader
        keys = model.load_state_dict(state['state_dict'], strict=False)
        inputs = torch.from_numpy(np.load({str(tmp_path / 'inputs.npy')!r}))
        with torch.no_grad():
            logits = model(inputs, mode='tensor')
        result = ImageClassificationInferencer(model, pretrained=False)(
            {image!r})[0]
        with open('result.json', 'w') as f:  # stdout has progress bars
            json.dump(dict(
                missing=keys.missing_keys, unexpected=keys.unexpected_keys,
                logits=logits.tolist(),
                classes=model._dataset_meta['classes'],
                pred_label=result['pred_label'],
                pred_class=result['pred_class']), f)
    """)
    proc = subprocess.run([sys.executable, '-c', script],
                          capture_output=True,
                          text=True,
                          cwd=str(tmp_path),
                          env=env_without_mmdks())
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / 'result.json') as f:
        out = json.load(f)
    assert out['missing'] == [] and out['unexpected'] == []
    with torch.no_grad():
        expected = dks_model(inputs, mode='tensor')
    assert torch.equal(torch.tensor(out['logits']), expected)
    assert tuple(out['classes']) == CLASSES

    from mmpretrain.apis import ImageClassificationInferencer
    dks = copy.deepcopy(dks_model)
    dks._config = Config.fromfile(dks_config)
    dks._dataset_meta = {'classes': CLASSES}
    expected = ImageClassificationInferencer(dks, pretrained=False)(image)[0]
    assert out['pred_label'] == expected['pred_label']
    assert out['pred_class'] == expected['pred_class'] == \
        CLASSES[expected['pred_label']]


def test_params_and_flops_match_mmpretrain_resnet18(stripped):
    from mmengine.analysis import get_model_complexity_info
    ours = build_model(stripped['outputs']['config'])
    theirs = build_model(MMPRETRAIN_RESNET18)
    assert type(ours) is type(theirs)
    count = sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count
    assert stripped['params_after'] == count
    # FLOPs from MMEngine's analysis (fvcore-style counting of the traced
    # graph), not just parameter counts.
    infos = [
        get_model_complexity_info(
            m, input_shape=(3, 64, 64), show_table=False, show_arch=False)
        for m in (ours, theirs)
    ]
    assert infos[0]['flops'] == infos[1]['flops'] > 0
    assert infos[0]['params'] == infos[1]['params'] == count


# --- bad input: a clear error, and OUT_DIR left exactly as it was ---------


class CodeOnLoad:
    """A pickle that creates ``marker`` if it is ever unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def make_bad(kind: str, folder: str, source: str) -> str:
    path = osp.join(folder, f'{kind}.pth')
    if kind == 'plain_mmpretrain':
        model = build_model(MMPRETRAIN_RESNET18)
        torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    elif kind == 'random_state_dict':
        torch.save({'weight': torch.randn(3, 3), 'bias': torch.randn(3)}, path)
    elif kind == 'truncated':
        torch.save({'state_dict': {'w': torch.randn(64, 64)}}, path)
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif kind == 'not_a_checkpoint':
        with open(path, 'w') as f:
            f.write('model = dict(type="ResNet")\n')
    elif kind == 'shape_mismatch':
        ckpt = torch.load(source, weights_only=True)
        ckpt['state_dict']['head.fc.weight'] = torch.zeros(10, 512)
        torch.save(ckpt, path)
    elif kind == 'malicious':
        torch.save({'state_dict': {}, 'x': CodeOnLoad(path + '.ran')}, path)
    elif kind == 'nonfinite':
        ckpt = torch.load(source, weights_only=True)
        ckpt['state_dict']['head.fc.weight'][0, 0] = float('nan')
        torch.save(ckpt, path)
    elif kind == 'directory':
        os.makedirs(path)
    elif kind == 'url':
        return 'http://127.0.0.1:9/epoch_3.pth'  # refused before a request
    elif kind == 'petrel':
        return 'cluster:s3://bucket/epoch_3.pth'  # MMEngine's cluster form
    return path


BAD_INPUTS = [
    ('plain_mmpretrain', None, 'not a DKS checkpoint'),
    ('random_state_dict', None, 'not a DKS checkpoint'),
    ('truncated', None, 'truncated or corrupt'),
    ('not_a_checkpoint', None, 'not a PyTorch checkpoint'),
    ('config_mismatch', DKS34_CONFIG,
     r'does not match CONFIG: \d+ missing keys: backbone\.layer1\.2\.'),
    ('shape_mismatch', None,
     r'shape mismatch .*head\.fc\.weight \(10, 512\) vs \(1000, 512\)'),
    ('malicious', None, r'calls io\.open, which could run code'),
    ('nonfinite', None,
     r'has NaN or inf in 1 tensors: head\.fc\.weight; .*--allow-nonfinite'),
    ('directory', None, 'directory.pth is a directory'),
    ('url', None, 'strip_heads reads a local file; download it'),
    ('petrel', None, 'strip_heads reads a local file; download it'),
]


@pytest.mark.parametrize('kind,config,message', BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_writes_nothing(kind, config, message, dks_config, source,
                                  tmp_path):
    config = config or dks_config
    checkpoint = source if kind == 'config_mismatch' else \
        make_bad(kind, str(tmp_path), source)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    # Even with --force, outputs from an earlier run must survive.
    stem = osp.splitext(osp.basename(checkpoint))[0]
    for ext in ('pth', 'py'):
        (out_dir / f'{stem}_plain.{ext}').write_text('earlier output')
    before = snapshot(str(out_dir))
    with pytest.raises(CheckpointError, match=message):
        strip_checkpoint(config, checkpoint, str(out_dir), force=True)
    assert snapshot(str(out_dir)) == before
    assert not osp.exists(checkpoint + '.ran')


def run_tool(capsys, *args: str) -> tuple:
    """``tools/strip_heads.py ARGS`` in this process: (exit code, stdout,
    stderr)."""
    code = run_script(osp.join(REPO_ROOT, 'tools', 'strip_heads.py'), *args)
    out, err = capsys.readouterr()
    return code, out, err


def test_other_auxiliary_part_is_reported(dks_config, source, dks_model,
                                          tmp_path, capsys):
    """A checkpoint whose dropped part differs from CONFIG's (here: one
    buffer fewer, as from another mmdks version) still exports exactly the
    plain weights, and says so; the plain part must match."""
    ckpt = training_checkpoint(dks_model)
    aux_buffer = next(k for k, _ in dks_model.named_buffers()
                      if k.startswith(AUX))
    del ckpt['state_dict'][aux_buffer]
    path = str(tmp_path / 'older.pth')
    torch.save(ckpt, path)
    code, out, err = run_tool(capsys, dks_config, path, str(tmp_path))
    assert code == 0, err
    assert f'note: the dropped part differs from CONFIG: 1 missing keys: ' \
        f'{aux_buffer}' in out
    exported = torch.load(
        str(tmp_path / 'older_plain.pth'), weights_only=True)['state_dict']
    reference = torch.load(source, weights_only=True)['state_dict']
    assert exported.keys() == {
        k for k in reference if not k.startswith(AUX)}


def test_cli_errors_are_one_line(dks_config, source, tmp_path, capsys):
    malicious = make_bad('malicious', str(tmp_path), source)
    out_dir = str(tmp_path / 'out')
    code, out, err = run_tool(capsys, dks_config, malicious, out_dir)
    assert code != 0 and out == ''
    assert err.startswith('error: ') and err.count('\n') == 1
    assert 'could run code' in err
    assert not osp.exists(malicious + '.ran')
    assert not osp.exists(out_dir)


def test_existing_outputs_need_force(dks_config, dks_model, source,
                                     tmp_path, capsys):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    existing = out_dir / 'epoch_3_plain.py'
    existing.write_text('earlier output')
    before = snapshot(str(out_dir))
    code, _, err = run_tool(capsys, dks_config, source, str(out_dir))
    assert code != 0 and err.startswith('error: output exists: ')
    assert '--force' in err and err.count('\n') == 1
    assert snapshot(str(out_dir)) == before

    code, out, err = run_tool(capsys, dks_config, source, str(out_dir),
                              '--force')
    assert code == 0, err
    before = sum(p.numel() for p in dks_model.parameters())
    after = sum(p.numel() for n, p in dks_model.named_parameters()
                if not n.startswith(AUX))
    assert f'params: {before:,} -> {after:,}' in out
    assert 'aux_neck, aux_head' in out and 'epoch_3_plain.pth' in out
    assert sorted(os.listdir(out_dir)) == \
        ['epoch_3_plain.pth', 'epoch_3_plain.py']  # no temporary files left
    assert existing.read_text() != 'earlier output'
    assert Config.fromfile(str(existing)).model.type == 'ImageClassifier'


def test_force_replaces_the_whole_result_set(dks_config, source, tmp_path,
                                             capsys):
    """An earlier --onnx run's outputs are one set: any of them needs
    --force, which replaces all of them (no stale ONNX beside new
    weights)."""
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    onnx = out_dir / 'epoch_3_plain.onnx'
    onnx.write_text('earlier output')
    code, _, err = run_tool(capsys, dks_config, source, str(out_dir))
    assert code != 0 and err == f'error: output exists: {onnx}; pass ' \
        '--force to replace\n'
    for ext in ('pth', 'py'):
        (out_dir / f'epoch_3_plain.{ext}').write_text('earlier output')
    code, _, err = run_tool(capsys, dks_config, source, str(out_dir),
                            '--force')
    assert code == 0, err
    assert sorted(os.listdir(out_dir)) == \
        ['epoch_3_plain.pth', 'epoch_3_plain.py']


def test_temporaries_of_a_killed_run_are_removed(dks_config, source,
                                                 tmp_path, capsys):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    # What atomic_outputs leaves when killed, and look-alikes it must keep.
    stale = ['.epoch_3_plain.a1b2_c3d.pth', '.epoch_3_plain.zzzzzzzz.py']
    kept = ['.epoch_3_plain.notmine99.pth', '.epoch_30_plain.a1b2c3d4.pth',
            'epoch_3_plain.a1b2c3d4.pth']
    for name in stale + kept:
        (out_dir / name).write_text('')
    code, _, err = run_tool(capsys, dks_config, source, str(out_dir))
    assert code == 0, err
    assert sorted(os.listdir(out_dir)) == sorted(
        kept + ['epoch_3_plain.pth', 'epoch_3_plain.py'])


def test_a_failed_write_is_one_line(dks_config, source, tmp_path):
    """A 10 MB file-size limit stands in for a full disk: one error line,
    no output and no temporary file left."""
    import resource

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 << 20, 10 << 20))

    out_dir = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'strip_heads.py'),
         dks_config, source, str(out_dir)],
        capture_output=True, text=True, preexec_fn=limit_file_size,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: cannot write to {out_dir} (File too large); nothing was ' \
        'written'
    assert 'Traceback' not in proc.stderr
    assert os.listdir(out_dir) == []


def test_nonfinite_weights_only_with_allow_nonfinite(dks_config, source,
                                                     tmp_path, capsys):
    from mmengine.logging import MMLogger
    nonfinite = make_bad('nonfinite', str(tmp_path), source)
    log = tmp_path / 'warnings.log'
    MMLogger.get_instance(f'strip-{tmp_path.name}', log_file=str(log))
    out_dir = tmp_path / 'out'
    # NaN logits never pass the ONNX check.
    code, _, err = run_tool(capsys, dks_config, nonfinite, str(out_dir),
                            '--allow-nonfinite', '--onnx', '--shape', '32',
                            '32')
    assert code == 1 and err.startswith(
        'error: ONNX logits differ from PyTorch by nan (tolerance')
    assert os.listdir(out_dir) == []

    code, _, err = run_tool(capsys, dks_config, nonfinite, str(out_dir),
                            '--allow-nonfinite')
    assert code == 0, err
    assert f'{nonfinite} has NaN or inf in 1 tensors: head.fc.weight ' \
        '(used anyway: --allow-nonfinite)' in log.read_text()
    exported = torch.load(
        str(out_dir / 'nonfinite_plain.pth'), weights_only=True)
    assert exported['state_dict']['head.fc.weight'][0, 0].isnan()


def test_debug_shows_the_traceback(dks_config, source, tmp_path, capsys):
    config = tmp_path / 'bad_alpha.py'
    config.write_text(
        f'_base_ = {dks_config!r}\n'
        "model = dict(aux_head=dict(synergy_loss=dict(alpha=float('inf'))))\n")
    args = (str(config), source, str(tmp_path / 'out'))
    code, out, err = run_tool(capsys, *args)
    assert code == 1 and out == '' and err == (
        'error: SynergyLoss: alpha=inf must be a finite number >= 0 (0 = '
        'plain deep supervision)\n')
    with pytest.raises(ValueError, match='alpha=inf'):
        run_tool(capsys, *args, '--debug')


def test_ema_weights_are_exported(dks_config, dks_model, tmp_path):
    """A checkpoint made by MMEngine's own EMAHook: the averaged weights
    are exported, not the trained ones."""
    ema = ExponentialMovingAverage(dks_model, momentum=0.5)
    with torch.no_grad():
        for param in ema.module.parameters():
            param.add_(torch.randn_like(param))
    averaged = copy.deepcopy(ema.module.state_dict())
    hook = EMAHook()
    hook.ema_model = ema
    checkpoint = training_checkpoint(dks_model)
    hook.before_save_checkpoint(None, checkpoint)  # swaps the two copies
    path = str(tmp_path / 'ema.pth')
    torch.save(checkpoint, path)

    summary = strip_checkpoint(dks_config, path, str(tmp_path), ema=True)
    assert summary['weights'] == 'ema'
    exported = torch.load(
        summary['outputs']['checkpoint'], weights_only=True)['state_dict']
    trained = dks_model.state_dict()
    for key, value in exported.items():
        assert torch.equal(value, averaged[key]), key
    assert not torch.equal(exported['head.fc.weight'],
                           trained['head.fc.weight'])


def test_ema_needs_ema_weights(dks_config, source, tmp_path):
    with pytest.raises(CheckpointError, match='no ema_state_dict'):
        strip_checkpoint(dks_config, source, str(tmp_path / 'x'), ema=True)
    assert not osp.exists(tmp_path / 'x')


def test_onnx_round_trip(stripped, dks_model):
    import onnxruntime
    assert 0 <= stripped['onnx_max_abs_diff'] <= 1e-4
    session = onnxruntime.InferenceSession(
        stripped['outputs']['onnx'], providers=['CPUExecutionProvider'])
    for batch in (1, 4):  # the batch dimension is dynamic
        inputs = torch.randn(batch, 3, 32, 32)
        logits = session.run(None, {'input': inputs.numpy()})[0]
        with torch.no_grad():
            expected = dks_model(inputs, mode='tensor').numpy()
        assert logits.shape == (batch, 1000)
        # float32 kernels of onnxruntime and PyTorch sum in other orders.
        assert np.abs(logits - expected).max() <= 1e-4


# --- a real MMEngine training run ------------------------------------------


@pytest.fixture(scope='module')
def trained(tmp_path_factory, dks_config, imagenet_folder) -> str:
    """One epoch (2 iterations at 32x32) of ``tools/train.py``; returns the
    checkpoint."""
    work_dir = tmp_path_factory.mktemp('train')
    options = [
        f'{split}_dataloader.dataset.data_root={imagenet_folder}'
        for split in ('train', 'val', 'test')
    ] + [
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.pipeline.1.scale=32',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=2'
    ]
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'train.py'), dks_config, '--work-dir',
        str(work_dir), '--cfg-options', *options
    ],
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(work_dir / 'epoch_1.pth')


def test_real_checkpoint_with_mim_test(dks_config, trained,
                                       imagenet_folder, tmp_path):
    """A real MMEngine checkpoint (message hub, optimizer, schedulers) loads
    with the safe loader and strips, and MMPretrain's own test script runs
    the result without mmdks."""
    summary = strip_checkpoint(dks_config, trained, str(tmp_path / 'out'))
    source = torch.load(trained, weights_only=True)
    assert {'message_hub', 'optimizer', 'param_schedulers'} <= set(source)
    exported = torch.load(
        summary['outputs']['checkpoint'], weights_only=True)
    assert exported['meta']['dataset_meta'] == \
        source['meta']['dataset_meta']
    for key, value in exported['state_dict'].items():
        assert torch.equal(value, source['state_dict'][key]), key

    proc = subprocess.run([
        'mim', 'test', 'mmpretrain', summary['outputs']['config'],
        '--checkpoint', summary['outputs']['checkpoint'], '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        f'test_dataloader.dataset.data_root={imagenet_folder}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'test_dataloader.batch_size=8'
    ],
                          capture_output=True,
                          text=True,
                          cwd=str(tmp_path),
                          env=env_without_mmdks())
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr


def test_cfg_options_the_run_was_trained_with(dks_config, tmp_path, capsys):
    # A run trained with --cfg-options model.head.num_classes=10 strips
    # with the same overrides, and its plain config keeps them.
    cfg = Config.fromfile(dks_config)
    cfg.model.head.num_classes = 10
    model = MODELS.build(cfg.model)
    checkpoint = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    out_dir = str(tmp_path / 'out')
    code, _, err = run_tool(capsys, dks_config, checkpoint, out_dir)
    assert code == 1 and 'shape mismatch' in err and not osp.exists(out_dir)
    code, out, err = run_tool(capsys, dks_config, checkpoint, out_dir,
                              '--cfg-options', 'model.head.num_classes=10')
    assert code == 0, err
    plain = Config.fromfile(osp.join(out_dir, 'epoch_1_plain.py'))
    assert plain.model.head.num_classes == 10


class ReinitBuffer(torch.nn.Module):
    """A model whose load hook drops a buffer it always re-initialises,
    as MMPretrain's SwinV2 does with its relative-position tables."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.register_buffer('table', torch.arange(3.))
        self._register_load_state_dict_pre_hook(self._drop)

    @staticmethod
    def _drop(state_dict, prefix, *args):
        state_dict.pop(prefix + 'table', None)


def test_load_exactly_allows_only_the_keys_the_model_drops_itself():
    from mmdks.apis import load_exactly
    weights = ReinitBuffer().state_dict()
    model = ReinitBuffer()
    with pytest.raises(RuntimeError, match='Missing key'):
        model.load_state_dict(weights, strict=True)
    load_exactly(model, weights)
    assert torch.equal(model.fc.weight, weights['fc.weight'])
    with pytest.raises(RuntimeError, match=r'unexpected keys extra'):
        load_exactly(model, dict(weights, extra=torch.zeros(1)))
    with pytest.raises(RuntimeError, match=r'missing keys fc\.bias'):
        load_exactly(model, {k: v for k, v in weights.items()
                             if k != 'fc.bias'})


def test_onnx_export_of_a_grey_image_model(tmp_path):
    # Fashion-MNIST's models take 1 channel: the export traces and checks
    # with what the model takes, not RGB.
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 10))
    diff = export_onnx(model, str(tmp_path / 'grey.onnx'), (28, 28))
    assert 0 <= diff <= 1e-4
