"""Training stages on TRL: SFT, reward model, DPO/KTO, online RL; tuning methods and merging."""

__all__: list[str] = []
