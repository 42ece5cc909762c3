import pytest
import torch

from mmdks.analysis.benchmark import operators
from mmdks.analysis.reference_loss import reference_synergy
from mmdks.models.losses import PAIR_MODES, SynergyLoss


@pytest.mark.parametrize('pairs', PAIR_MODES)
@pytest.mark.parametrize('num_classifiers', [2, 3, 4, 5])
@pytest.mark.parametrize('temperature', [1.0, 3.0])
def test_matches_loop_in_value_and_gradient(pairs, num_classifiers,
                                            temperature):
    torch.manual_seed(num_classifiers)
    logits = [(3 * torch.randn(6, 7, dtype=torch.float64)).requires_grad_()
              for _ in range(num_classifiers)]
    ours = SynergyLoss(alpha=0.7, temperature=temperature, pairs=pairs)(
        logits)
    ref = reference_synergy(logits, pairs, temperature, alpha=0.7)
    assert ours.item() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    ours_grads = torch.autograd.grad(ours, logits)
    # A pure teacher is outside the loop's graph: its gradient is zero.
    ref_grads = torch.autograd.grad(ref, logits, allow_unused=True)
    for g, r, x in zip(ours_grads, ref_grads, logits):
        r = torch.zeros_like(x) if r is None else r
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)


def _relative(x, ref):
    return ((x.double() - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize('pairs', PAIR_MODES)
@pytest.mark.parametrize('scale,num_classes', [(1.0, 10), (3.0, 1000),
                                               (10.0, 10), (30.0, 100)])
@pytest.mark.parametrize('temperature', [1.0, 2.0])
def test_eps_reproduces_the_reference_code(pairs, scale, num_classes,
                                           temperature):
    # Scale 10 and 30 saturate: most probabilities fall far below 1e-8,
    # where the smoothing caps the log-ratios.
    torch.manual_seed(int(scale) + num_classes)
    logits = scale * torch.randn(3, 8, num_classes, dtype=torch.float64)
    ref_in = logits.clone().requires_grad_()
    ref = reference_synergy(list(ref_in), pairs, temperature, 0.7,
                            eps=1e-8)
    ref_grad, = torch.autograd.grad(ref, ref_in)
    # The reference itself in float32, as it ran: where saturation leaves
    # float32 too few digits (scale 30), ours may err as much as it does.
    ref32_in = logits.float().requires_grad_()
    ref32 = reference_synergy(list(ref32_in), pairs, temperature, 0.7,
                              eps=1e-8)
    ref32_grad, = torch.autograd.grad(ref32, ref32_in)
    float32_tol = max(1e-6, 4 * _relative(ref32_grad, ref_grad))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, float32_tol)):
        ours_in = logits.to(dtype).requires_grad_()
        ours = SynergyLoss(alpha=0.7, temperature=temperature, pairs=pairs,
                           eps=1e-8)(ours_in)
        ours_grad, = torch.autograd.grad(ours, ours_in)
        assert abs(ours.item() - ref.item()) <= 1e-6 * ref.item(), dtype
        assert _relative(ours_grad, ref_grad) <= tol, dtype
        # Elementwise too, down to the smallest gradients that matter.
        torch.testing.assert_close(
            ours_grad.double(), ref_grad, rtol=10 * tol,
            atol=tol * ref_grad.abs().max().item())


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_eps_matches_the_reference_on_half_precision_logits(dtype):
    torch.manual_seed(0)
    logits = (8 * torch.randn(4, 16, 100)).to(dtype)
    ref_in = logits.double().requires_grad_()
    ref = reference_synergy(list(ref_in), 'dense', 1.0, 1.0, eps=1e-8)
    ref_grad, = torch.autograd.grad(ref, ref_in)
    ours_in = logits.clone().requires_grad_()
    ours = SynergyLoss(eps=1e-8)(ours_in)
    ours_grad, = torch.autograd.grad(ours, ours_in)
    assert ours.dtype == torch.float32
    assert abs(ours.item() - ref.item()) <= 1e-6 * ref.item()
    # The gradient is returned in the logits' dtype: one rounding.
    assert ours_grad.dtype == dtype
    assert _relative(ours_grad, ref_grad) <= 2**-7


def test_smoothing_matters_only_on_saturated_predictions():
    # The figures quoted in the loss's docstring and docs/objective.md.
    torch.manual_seed(0)
    for scale, num_classes, low, high in ((1.0, 10, 0, 1e-5),
                                          (10.0, 10, 0.1, 0.4)):
        logits = scale * torch.randn(3, 256, num_classes,
                                     dtype=torch.float64)
        exact = SynergyLoss()(logits)
        smoothed = SynergyLoss(eps=1e-8)(logits)
        assert low <= (exact - smoothed).item() / exact.item() <= high


def test_float32_stacked_input_matches_loop():
    torch.manual_seed(0)
    logits = torch.randn(4, 16, 100)
    ours = SynergyLoss()(logits)
    ref = reference_synergy(list(logits), 'dense', 1.0, 1.0)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('pairs,pure_teacher', [('top_down', -1),
                                                ('bottom_up', 0)])
def test_no_gradient_reaches_the_teacher_side(pairs, pure_teacher):
    # A classifier that is only ever a teacher must get no gradient at all.
    logits = [torch.randn(5, 4, requires_grad=True) for _ in range(3)]
    SynergyLoss(pairs=pairs)(logits).backward()
    assert torch.count_nonzero(logits[pure_teacher].grad) == 0
    students = [g.grad for i, g in enumerate(logits)
                if i != pure_teacher % 3]
    assert all(torch.count_nonzero(g) > 0 for g in students)


def test_identical_classifiers_give_zero():
    same = torch.randn(3, 10)
    # float32: the entropy and cross terms cancel to rounding error.
    assert SynergyLoss()([same, same.clone(), same.clone()]).item() == \
        pytest.approx(0, abs=1e-5)


def test_single_classifier_and_alpha_zero_give_zero():
    logits = torch.randn(1, 4, 10, requires_grad=True)
    assert SynergyLoss()(logits).item() == 0
    many = torch.randn(3, 4, 10, requires_grad=True)
    loss = SynergyLoss(alpha=0.0)(many)
    assert loss.item() == 0 and loss.dtype == many.dtype


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('scale', [1.0, 1e2, 1e4])
def test_finite_for_large_and_saturated_logits(dtype, scale):
    torch.manual_seed(1)
    logits = (scale * torch.randn(3, 8, 10)).to(dtype)
    logits[:, 0] = 0
    logits[:, 0, 3] = scale  # one-hot-like row
    logits.requires_grad_()
    loss = SynergyLoss(temperature=2.0)(logits)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() >= -1e-3
    assert torch.isfinite(logits.grad.float()).all()


@pytest.mark.parametrize('kwargs,field', [
    (dict(pairs='all'), 'pairs'),
    (dict(alpha=-1.0), 'alpha'),
    (dict(temperature=0.0), 'temperature'),
    (dict(temperature=-2.0), 'temperature'),
    (dict(reduction='none'), 'reduction'),
    (dict(warmup_iters=-1), 'warmup_iters'),
    (dict(alpha=float('inf')), 'alpha'),
    (dict(temperature=float('nan')), 'temperature'),
    (dict(eps=-1e-8), 'eps'),
    (dict(eps=1e-2), r'eps=0.01 must be a number in \[0, 0.0001\]'),
    (dict(eps='1e-8'), 'eps'),
    (dict(fused=1), 'fused'),
])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SynergyLoss(**kwargs)


def test_mean_reduction_divides_by_the_number_of_pairs():
    logits = torch.randn(4, 6, 9)
    total = SynergyLoss(pairs='top_down')(logits)
    mean = SynergyLoss(pairs='top_down', reduction='mean')(logits)
    torch.testing.assert_close(mean, total / 6)  # K(K-1)/2 pairs


def test_warmup_factor_scales_the_loss_and_needs_its_hook():
    logits = torch.randn(3, 6, 9)
    full = SynergyLoss(alpha=2.0)(logits)
    ramped = SynergyLoss(alpha=2.0, warmup_iters=4)
    with pytest.raises(RuntimeError, match='SynergyWarmupHook'):
        ramped(logits)
    ramped.set_warmup_factor(0.25)
    torch.testing.assert_close(ramped(logits), full * 0.25)
    ramped.eval()  # evaluation needs no hook
    assert SynergyLoss(warmup_iters=4).eval()(logits).item() > 0


def test_autocast_does_not_lower_the_precision_of_the_gradient():
    # The gradient is a difference of nearly equal probabilities: under
    # bf16 autocast a half-precision einsum made it ~1e-3 off.
    torch.manual_seed(0)
    logits = 3 * torch.randn(4, 64, 1000)
    ref = logits.double().requires_grad_()
    SynergyLoss()(ref).backward()
    ours = logits.clone().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        SynergyLoss()(ours).backward()
    error = (ours.grad.double() - ref.grad).norm() / ref.grad.norm()
    assert error < 1e-5


def test_nearly_equal_classifiers_keep_the_loss_in_float32():
    # Classifiers that almost agree have a KL sum far below the entropies
    # it is made of; a form that subtracts those loses it (3e-3 relative).
    torch.manual_seed(0)
    shared = 3 * torch.randn(1, 256, 1000, dtype=torch.float64)
    logits = shared + 1e-2 * torch.randn(4, 256, 1000, dtype=torch.float64)
    ref = reference_synergy(list(logits), 'dense', 1.0, 1.0)
    ours = SynergyLoss()(logits.float()).double()
    assert (ours - ref).abs() < 1e-4 * ref


@pytest.mark.parametrize('noise', [1e-3, 1e-4])
def test_nearly_agreeing_classifiers_log_a_value_as_good_as_the_loop(noise):
    # Terms of the size of the disagreement cancel to a KL of its square:
    # float32 keeps 6e-4 (noise 1e-3) and 8e-3 (1e-4) of it, where a
    # per-pair F.kl_div loop keeps 3e-3 and 2e-1 (docs/objective.md).
    torch.manual_seed(0)
    shared = 5 * torch.randn(1, 256, 1000, dtype=torch.float64)
    logits = shared + noise * torch.randn(3, 256, 1000, dtype=torch.float64)
    ref = reference_synergy(list(logits), 'dense', 1.0, 1.0)
    ours = SynergyLoss()(logits.float()).double()
    loop = reference_synergy(list(logits.float()), 'dense', 1.0, 1.0).double()
    assert abs(ours - ref) <= min(abs(loop - ref), 100 * noise * ref)


@pytest.mark.parametrize('pairs,eps,count', [('dense', 0, 7),
                                             ('top_down', 0, 9),
                                             ('dense', 1e-8, 12),
                                             ('top_down', 1e-8, 12)])
def test_forward_and_backward_run_few_operators(pairs, eps, count):
    # On a GPU the loss costs its launches, not its arithmetic: keep the
    # count from creeping back (autograd's seed included; the form before
    # this one ran 10 for dense pairs, the one before that 16).
    logits = torch.randn(4, 8, 10, requires_grad=True)
    loss = SynergyLoss(pairs=pairs, eps=eps)
    loss(logits)  # the pair set is built once, outside the count
    ran = operators(lambda: torch.autograd.grad(loss(logits), logits))
    assert len(ran) == count, ran


def test_compiles_into_one_graph_with_the_same_result():
    # MMEngine's `compile=True` hands the loss to torch.compile, which can
    # fuse its kernels only if it traces it without a graph break.
    torch.manual_seed(0)
    logits = torch.randn(4, 8, 10, dtype=torch.float64)
    eager, compiled = logits.clone().requires_grad_(), \
        logits.clone().requires_grad_()
    loss = SynergyLoss(temperature=2.0)
    expected = loss(eager)
    expected.backward()
    value = torch.compile(loss, fullgraph=True)(compiled)
    value.backward()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(compiled.grad, eager.grad)
