import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// Writes the merged tokenizer (new added tokens) and the chat template into the output folder, over
/// the copied donor files.
enum TokenizerFiles {
    static func write(plan: MergePlan, into directory: String) throws {
        if let v = plan.vocabulary, let doc = v.tokenizerDocument {
            try writeFileAtomically(JSONValue.object(doc).pythonText(sortKeys: false) + "\n", to: directory + "/tokenizer.json")
        }
        let configPath = directory + "/tokenizer_config.json"
        var tokenizerConfig: JSONObject?
        if FileManager.default.fileExists(atPath: configPath) {
            let file = try MappedFile(path: configPath)
            tokenizerConfig = try JSONValue.parse(file.bytes(offset: 0, count: file.count)).objectValue
        }
        var changed = false
        if var tc = tokenizerConfig, let v = plan.vocabulary, !v.newAddedTokens.isEmpty, var decoder = tc["added_tokens_decoder"]?.objectValue {
            for (id, entry) in v.newAddedTokens {
                var e = entry
                e["id"] = nil
                decoder[String(id)] = .object(JSONObject(e.entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
            }
            tc["added_tokens_decoder"] = .object(decoder)
            tokenizerConfig = tc
            changed = true
        }
        if let template = try chatTemplate(plan) {
            var tc = tokenizerConfig ?? JSONObject()
            tc["chat_template"] = .string(template)
            tokenizerConfig = tc
            changed = true
            try? FileManager.default.removeItem(atPath: directory + "/chat_template.jinja")
        }
        if changed, let tc = tokenizerConfig {
            try writeFileAtomically(JSONValue.object(tc).pythonText(sortKeys: false) + "\n", to: configPath)
        }
    }

    /// The template `chat_template:` asks for: `auto` (the most common among the inputs), a built-in
    /// name, or a literal Jinja template.
    static func chatTemplate(_ plan: MergePlan) throws -> String? {
        guard let requested = plan.config.chatTemplate else { return nil }
        if requested == "auto" {
            var counts: [String: Int] = [:]
            var order: [String] = []
            for m in plan.models {
                guard let t = existingTemplate(m.path) else { continue }
                if counts[t] == nil { order.append(t) }
                counts[t, default: 0] += 1
            }
            return order.max { counts[$0]! < counts[$1]! }
        }
        if let builtin = builtinTemplates[requested] { return builtin }
        guard requested.count >= 20, requested.contains("{") else {
            throw MergeError.config(path: plan.config.path, key: "chat_template",
                                    reason: "'\(requested)' is neither `auto`, a built-in (\(builtinTemplates.keys.sorted().joined(separator: ", "))) nor a Jinja template")
        }
        return requested
    }

    private static func existingTemplate(_ folder: String) -> String? {
        if let text = try? String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8) {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let file = try? MappedFile(path: folder + "/tokenizer_config.json"),
              let json = try? JSONValue.parse(file.bytes(offset: 0, count: file.count)) else { return nil }
        return json["chat_template"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Built-in templates, written for Amalgam from the published chat formats.
    static let builtinTemplates: [String: String] = [
        "chatml": "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "llama3": "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        "alpaca": "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
        "mistral": "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
    ]
}
