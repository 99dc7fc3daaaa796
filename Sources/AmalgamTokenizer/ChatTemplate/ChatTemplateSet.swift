import AmalgamCore
import Foundation

/// The chat templates a model ships: a default one and named ones (transformers' `chat_template` list,
/// `additional_chat_templates/`, GGUF's `tokenizer.chat_template.NAME`), kept as source until one is used.
public struct ChatTemplateSet: Sendable {
    /// A template's source and where it came from.
    public struct Entry: Sendable {
        public var source: String
        public var origin: String
        public init(source: String, origin: String) {
            self.source = source
            self.origin = origin
        }
    }

    public var defaultTemplate: Entry?
    public var named: [String: Entry]

    public init(defaultTemplate: Entry?, named: [String: Entry] = [:]) {
        self.defaultTemplate = defaultTemplate
        self.named = named
    }

    /// The templates of a Hugging Face folder, in transformers 5's order: `chat_template.jinja` (or else
    /// `tokenizer_config.json`'s `chat_template`, a string or a list of {name, template}) is the default;
    /// the list's other entries and `additional_chat_templates/NAME.jinja` are named.
    public init(folder: String) throws(TokenizerError) {
        var defaultTemplate: Entry?
        var named: [String: Entry] = [:]
        let configPath = folder + "/tokenizer_config.json"
        if FileManager.default.fileExists(atPath: configPath), let value = try Tokenizer.readJSON(configPath)["chat_template"] {
            if let s = value.stringValue {
                defaultTemplate = Entry(source: s, origin: "\(configPath): chat_template")
            } else if let list = value.arrayValue {
                for (k, item) in list.enumerated() {
                    guard let name = item["name"]?.stringValue, let source = item["template"]?.stringValue else {
                        throw .invalidValue(path: configPath, key: "chat_template[\(k)]", reason: "expected {\"name\": …, \"template\": …}")
                    }
                    let entry = Entry(source: source, origin: "\(configPath): chat_template[\(k)] (\(name))")
                    if name == "default" { defaultTemplate = entry } else { named[name] = entry }
                }
            } else if !value.isNull {
                throw .invalidValue(path: configPath, key: "chat_template", reason: "expected a string or a list of {name, template}")
            }
        }
        let jinja = folder + "/chat_template.jinja"
        if let text = try? String(contentsOfFile: jinja, encoding: .utf8) { defaultTemplate = Entry(source: text, origin: jinja) }
        let extra = folder + "/additional_chat_templates"
        for file in (try? FileManager.default.contentsOfDirectory(atPath: extra)) ?? [] where file.hasSuffix(".jinja") {
            if let text = try? String(contentsOfFile: extra + "/" + file, encoding: .utf8) {
                named[String(file.dropLast(6))] = Entry(source: text, origin: extra + "/" + file)
            }
        }
        self.init(defaultTemplate: defaultTemplate, named: named)
    }

    /// The default template, or the one called `name`; throws naming what exists when there is none.
    public func template(named name: String? = nil, modelPath: String) throws(ChatTemplateError) -> ChatTemplate {
        let entry: Entry?
        if let name { entry = name == "default" ? defaultTemplate : named[name] } else { entry = defaultTemplate }
        guard let entry else {
            let available = (defaultTemplate == nil ? [] : ["default"]) + named.keys.sorted()
            let what = name.map { "no chat template called '\($0)'" } ?? "no chat template"
            throw ChatTemplateError(.runtime, origin: modelPath, line: 0,
                                    "\(what) (available: \(available.isEmpty ? "none" : available.joined(separator: ", "))); give one with --chat-template FILE")
        }
        return try ChatTemplate(source: entry.source, origin: entry.origin)
    }
}

extension TokenizerConfig {
    /// Reads the parsed JSON of a `tokenizer_config.json` (`path` names it in errors).
    public init(json: JSONValue, path: String) throws(TokenizerError) {
        try self.init(JSONNode(value: json, file: path, path: ""))
    }
}
