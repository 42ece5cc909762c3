from .backbone_probe import probe_out_shapes
from .conv_branch import ConvBranch
from .res_stage_branch import (ResStageBranch, is_resnet_family,
                               resnet_stage_channels)
from .token_branch import TokenBranch
from .wrn_stage_branch import WRNStageBranch

__all__ = [
    'ConvBranch', 'ResStageBranch', 'TokenBranch', 'WRNStageBranch',
    'is_resnet_family', 'probe_out_shapes', 'resnet_stage_channels'
]
