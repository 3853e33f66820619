"""Reading and writing: images, .npy, text matrices, PNG, value scaling."""
