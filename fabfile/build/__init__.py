"""`inv build`: the app image from the project's tree with BuildKit, tagged with the commit."""
