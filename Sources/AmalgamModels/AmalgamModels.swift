// The AmalgamModels module; see DEVELOPERS.md for what belongs here.
