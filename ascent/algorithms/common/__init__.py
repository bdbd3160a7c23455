"""What several algorithms share: on- and off-policy collection, returns and advantages, exploration."""
