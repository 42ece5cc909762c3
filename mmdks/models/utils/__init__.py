from .res_stage_branch import ResStageBranch, resnet_stage_channels

__all__ = ['ResStageBranch', 'resnet_stage_channels']
