"""Experience storage: on-policy rollout storage, replay, prioritized replay, frame-stack replay."""
