"""Recipes: data made by training (the locomotion datasets' SAC run), a layer above the training loop."""
