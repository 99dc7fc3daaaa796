import Foundation

/// The short model card written beside a merge.
enum ModelCard {
    static func text(for plan: MergePlan) -> String {
        let name = plan.config.mergeMethod
        var out = "---\nlibrary_name: transformers\ntags:\n- merge\n- amalgam\n---\n"
        out += "# Merged model\n\nThis model was merged with [Amalgam](https://github.com/) using the **\(name)** method"
        if let base = plan.config.baseModel { out += " with `\(base)` as the base" }
        out += "."
        if plan.arithmetic == .mergekit {
            out += " Computed with `--arithmetic mergekit`: rounded where mergekit 0.1.5's torch arithmetic rounds, in the config's dtype."
        }
        out += "\n\n## Models merged\n\n"
        for m in plan.models { out += "- `\(m.reference)`\n" }
        out += "\n## Configuration\n\n```yaml\n\(plan.config.sourceText.trimmingCharacters(in: .whitespacesAndNewlines))\n```\n"
        return out
    }
}
