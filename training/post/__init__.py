"""Post-training: RL with verifiable rewards and preference learning over Omni's token sequence.

The losses (`losses`) see only per-token log-probabilities, masks and rewards, so they apply
unchanged to text, image codes and speech units: a response is whatever span of the one
interleaved sequence the policy produced. Rewards (`rewards`, `sandbox`) and the SnapPO
snapshot stages (`snapshots`) talk to the losses only through tensors and files on disk.
"""
