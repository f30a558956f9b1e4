"""One module per served model: how its data is prepared, its model built and evaluated."""
