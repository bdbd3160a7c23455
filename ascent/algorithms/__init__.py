"""One module per algorithm (its page); `common/` holds what several of them share."""
