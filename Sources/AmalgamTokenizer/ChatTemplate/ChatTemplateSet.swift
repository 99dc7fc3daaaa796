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
        let configPath = folder + "/tokenizer_config.json"
        let config = FileManager.default.fileExists(atPath: configPath) ? try JSONValue.read(contentsOf: configPath, error: TokenizerError.json) : nil
        var texts: [String: String] = [:]
        texts["chat_template.jinja"] = try? String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8)
        let extra = folder + "/additional_chat_templates"
        for file in (try? FileManager.default.contentsOfDirectory(atPath: extra)) ?? [] where file.hasSuffix(".jinja") {
            texts["additional_chat_templates/" + file] = try? String(contentsOfFile: extra + "/" + file, encoding: .utf8)
        }
        try self.init(tokenizerConfig: config, texts: texts, origin: folder + "/")
    }

    /// The templates among a model's companion texts by file name (`tokenizer_config.json`,
    /// `chat_template.jinja`, `additional_chat_templates/NAME.jinja`), read as `init(folder:)` reads the
    /// files: for a model merged in memory or converted from GGUF. Origins are `origin` + the file name.
    public init(texts: [String: String], origin: String) throws(TokenizerError) {
        var config: JSONValue?
        if let text = texts["tokenizer_config.json"] {
            do { config = try JSONValue.parse(text) } catch { throw .invalidJSON(path: origin + "tokenizer_config.json", error: error) }
        }
        try self.init(tokenizerConfig: config, texts: texts, origin: origin)
    }

    private init(tokenizerConfig config: JSONValue?, texts: [String: String], origin: String) throws(TokenizerError) {
        var defaultTemplate: Entry?
        var named: [String: Entry] = [:]
        let configPath = origin + "tokenizer_config.json"
        if let value = config?["chat_template"] {
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
        if let text = texts["chat_template.jinja"] { defaultTemplate = Entry(source: text, origin: origin + "chat_template.jinja") }
        let prefix = "additional_chat_templates/"
        for (file, text) in texts where file.hasPrefix(prefix) && file.hasSuffix(".jinja") {
            named[String(file.dropFirst(prefix.count).dropLast(6))] = Entry(source: text, origin: origin + file)
        }
        self.init(defaultTemplate: defaultTemplate, named: named)
    }

    /// The templates of a GGUF file, given its string metadata: `tokenizer.chat_template` is the default and
    /// `tokenizer.chat_template.NAME` the named ones (as llama.cpp's `convert_hf_to_gguf.py` writes a list
    /// of templates). `path` names the file in origins.
    public init(ggufMetadata metadata: [(key: String, value: String)], path: String) {
        var defaultTemplate: Entry?
        var named: [String: Entry] = [:]
        let prefix = "tokenizer.chat_template"
        for (key, value) in metadata where key.hasPrefix(prefix) {
            let entry = Entry(source: value, origin: "\(path): \(key)")
            if key == prefix {
                defaultTemplate = entry
            } else if key.hasPrefix(prefix + ".") {
                named[String(key.dropFirst(prefix.count + 1))] = entry
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
