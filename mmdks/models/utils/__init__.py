from .backbone_probe import (BackboneProbe, ModuleRun, input_channels,
                             probe_backbone, probe_size_of)
from .conv_branch import ConvBranch
from .output_recorder import OutputRecorder
from .res_stage_branch import (ResStageBranch, default_num_blocks,
                               is_resnet_family, resnet_stage_channels)
from .stage_branch import BaseBranch
from .taps import (Tap, TapCandidate, resolve_tap, stage_names,
                   tap_candidates, tap_input)
from .token_branch import TokenBranch
from .wrn_stage_branch import WRNStageBranch

__all__ = [
    'BackboneProbe', 'BaseBranch', 'ConvBranch', 'ModuleRun',
    'OutputRecorder', 'ResStageBranch', 'Tap', 'TapCandidate', 'TokenBranch',
    'WRNStageBranch', 'default_num_blocks', 'input_channels',
    'is_resnet_family',
    'probe_backbone', 'probe_size_of', 'resnet_stage_channels',
    'resolve_tap', 'stage_names', 'tap_candidates', 'tap_input'
]
