// The AmalgamTokenizer module; see DEVELOPERS.md for what belongs here.
