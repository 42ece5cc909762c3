"""tools/model_converters/dks_official_to_mmpretrain.py on state dicts saved
as the authors released theirs: torchvision ResNets from nn.DataParallel."""
import os
import os.path as osp
import subprocess

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmpretrain import get_model
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, REPO_ROOT, run_script

TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters',
                'dks_official_to_mmpretrain.py')


def run_tool(*args: str) -> int:
    return run_script(TOOL, *args)


def released(depth: int, path) -> torch.nn.Module:
    """A torchvision ResNet with random weights and BN statistics, saved
    as the authors saved theirs (DataParallel's ``module.`` keys)."""
    torch.manual_seed(depth)
    model = getattr(torchvision.models, f'resnet{depth}')()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.1, 0.1)
            torch.nn.init.uniform_(module.running_mean, -0.1, 0.1)
            torch.nn.init.uniform_(module.running_var, 0.5, 1.5)
    torch.save(torch.nn.DataParallel(model).state_dict(), path)
    return model.eval()


@pytest.mark.parametrize('depth,size', [(18, 224), (50, 64)])
def test_same_logits_as_torchvision(depth, size, tmp_path, capsys):
    src, dst = tmp_path / 'released.pth', str(tmp_path / 'dks.pth')
    torchvision_model = released(depth, src)
    assert run_tool(str(src), dst) == 0
    assert f'ResNet-{depth}:' in capsys.readouterr().out
    model = get_model(dst[:-len('.pth')] + '.py', pretrained=dst).eval()
    inputs = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = torchvision_model(inputs)
        found = model(inputs, mode='tensor')
    # The same float32 operations in the same order: bit-identical on the
    # CPUs this ran on (max abs difference 0.0), a float32 margin allowed.
    torch.testing.assert_close(found, expected, rtol=1e-6, atol=1e-5)
    meta = torch.load(dst)['meta']
    assert len(meta['dataset_meta']['classes']) == 1000
    assert meta['dataset_meta']['classes'][0] == 'tench, Tinca tinca'


def test_mim_test_mmpretrain_runs_on_it(imagenet_folder, tmp_path):
    src, dst = tmp_path / 'released.pth', str(tmp_path / 'dks.pth')
    released(18, src)
    assert run_tool(str(src), dst) == 0
    config = Config.fromfile(dst[:-len('.pth')] + '.py')
    assert config.test_dataloader.dataset.pipeline[1] == dict(
        type='Resize', scale=(256, 256), interpolation='bicubic',
        backend='pillow')
    loader = 'test_dataloader'
    result = subprocess.run(
        ['mim', 'test', 'mmpretrain', dst[:-len('.pth')] + '.py',
         '--checkpoint', dst, '--work-dir', str(tmp_path / 'test'),
         '--cfg-options', f'{loader}.dataset.data_root={imagenet_folder}',
         f'{loader}.batch_size=4', f'{loader}.num_workers=0',
         f'{loader}.persistent_workers=False'],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'accuracy/top1' in result.stdout + result.stderr


def error_of(src, dst, capsys, *options) -> str:
    assert run_tool(str(src), str(dst), *options) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    return err


def test_refuses_what_is_not_a_released_resnet(tmp_path, capsys):
    dst = tmp_path / 'out.pth'
    vgg_like = tmp_path / 'vgg.pth'
    torch.save({'module.features.0.weight': torch.zeros(8, 3, 3, 3),
                'module.classifier.0.weight': torch.zeros(10, 8)}, vgg_like)
    err = error_of(vgg_like, dst, capsys)
    assert 'not a torchvision ResNet' in err
    assert 'features.0.weight' in err

    # A DKS training checkpoint of this project (MMEngine's format).
    dks = MODELS.build(
        Config.fromfile(
            osp.join(CONFIG_DIR, 'cifar100',
                     'dks_resnet32_1xb128_cifar100.py')).model)
    training = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': dks.state_dict()},
               training)
    err = error_of(training, dst, capsys)
    assert 'DKS training checkpoint' in err and 'strip_heads.py' in err

    # A torchvision ResNet that still has branch weights.
    with_branch = tmp_path / 'with_branch.pth'
    state = torchvision.models.resnet18().state_dict()
    torch.save({**state, 'branch1.fc.weight': torch.zeros(1000, 512)},
               with_branch)
    err = error_of(with_branch, dst, capsys)
    assert 'ResNet-18' in err and 'branch1.fc.weight' in err
    assert not dst.exists() and not dst.with_suffix('.py').exists()


def test_never_overwrites_without_force(tmp_path, capsys):
    src, dst = tmp_path / 'released.pth', tmp_path / 'dks.pth'
    released(18, src)
    dst.write_bytes(b'mine')
    err = error_of(src, dst, capsys)
    assert '--force' in err and dst.read_bytes() == b'mine'
    assert not dst.with_suffix('.py').exists()
    assert run_tool(str(src), str(dst), '--force') == 0
    assert torch.load(dst)['state_dict']
