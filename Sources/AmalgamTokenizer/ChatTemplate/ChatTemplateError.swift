import AmalgamJinja

/// Why a chat template could not be compiled or rendered: the template interpreter's error (its origin,
/// template line, kind and message), under the name the tokenizer's callers know.
public typealias ChatTemplateError = JinjaError
