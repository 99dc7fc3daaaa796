// The AmalgamSearch module; see DEVELOPERS.md for what belongs here.
