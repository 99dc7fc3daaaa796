import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import Foundation
import Testing

@Suite("AdamW, MoFO and the learning-rate schedule match PyTorch")
struct AdamWTests {
    let fixture: TrainingFixture
    let shapes = [[6, 7], [11]]
    let steps = 5
    let rates: [Double]

    init() throws {
        fixture = try TrainingFixture("adamw.safetensors")
        rates = try fixture.doubles("lr")
    }

    func parameters() throws -> [TrainableTensor] {
        try shapes.indices.map { i in TrainableTensor(name: "p\(i)", shape: shapes[i], values: try fixture.floats("init.\(i)")) }
    }

    /// Runs the fixture's five steps, checking every tensor after every step against `tag`.
    func check(_ tag: String, _ settings: AdamWSettings) throws {
        let params = try parameters()
        let optimizer = AdamW(parameters: params, settings: settings)
        var norms: [Double] = []
        for k in 0..<steps {
            for (i, p) in params.enumerated() {
                let g = try fixture.floats("grad.\(k).\(i)")
                p.zeroGradient()
                for j in 0..<p.count { p.gradient[j] = g[j] }
            }
            norms.append(optimizer.step(learningRate: rates[k]))
            for (i, p) in params.enumerated() {
                let expected = try fixture.floats("\(tag).\(k).\(i)")
                let worst = zip(p.values, expected).map { abs(Double($0 - $1)) / max(abs(Double($1)), 1e-3) }.max()!
                #expect(worst < 2e-6, "\(tag) step \(k) tensor \(i): relative error \(worst)")
            }
        }
        if let expectedNorms = try? fixture.doubles("\(tag).norms") {
            for (a, b) in zip(norms, expectedNorms) { #expect(abs(a - b) < 1e-5 * b) }
        }
    }

    @Test("five AdamW steps with weight decay give torch.optim.AdamW's parameters")
    func adamw() throws { try check("adamw", AdamWSettings(beta2: 0.95, weightDecay: 0.1)) }

    @Test("with global gradient clipping at 1.0, as clip_grad_norm_ then AdamW")
    func clipped() throws { try check("adamw_clip", AdamWSettings(beta2: 0.95, weightDecay: 0.1, clipNorm: 1)) }

    @Test("MoFO moves only the top 30 % of |first moment| per tensor")
    func mofo() throws {
        try check("mofo", AdamWSettings(beta2: 0.95, weightDecay: 0.1, mofoFraction: 0.3))
        // and really leaves the rest alone after one step
        let params = try parameters()
        let before = params.map(\.values)
        let optimizer = AdamW(parameters: params, settings: AdamWSettings(mofoFraction: 0.3))
        for (i, p) in params.enumerated() {
            let g = try fixture.floats("grad.0.\(i)")
            for j in 0..<p.count { p.gradient[j] = g[j] }
        }
        optimizer.step(learningRate: 1e-2)
        for (p, b) in zip(params, before) {
            #expect(zip(p.values, b).filter { $0 != $1 }.count == max(1, Int(0.3 * Double(p.count))))
        }
    }

    @Test("state saved after two steps and loaded into a fresh optimizer continues identically")
    func resume() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amalgam-adamw-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let settings = AdamWSettings(beta2: 0.95, weightDecay: 0.1, clipNorm: 1, mofoFraction: 0.5)
        func feed(_ params: [TrainableTensor], _ k: Int) throws {
            for (i, p) in params.enumerated() {
                let g = try fixture.floats("grad.\(k).\(i)")
                for j in 0..<p.count { p.gradient[j] = g[j] }
            }
        }
        let straight = try parameters()
        let a = AdamW(parameters: straight, settings: settings)
        for k in 0..<steps { try feed(straight, k); a.step(learningRate: rates[k]) }

        let first = try parameters()
        let b = AdamW(parameters: first, settings: settings)
        for k in 0..<2 { try feed(first, k); b.step(learningRate: rates[k]) }
        try b.save(to: dir + "/state.safetensors")
        let second = first.map { TrainableTensor(name: $0.name, shape: $0.shape, values: $0.values) }
        let c = AdamW(parameters: second, settings: settings)
        try c.load(from: dir + "/state.safetensors")
        #expect(c.stepCount == 2)
        for k in 2..<steps { try feed(second, k); c.step(learningRate: rates[k]) }
        for (x, y) in zip(straight, second) { #expect(x.values == y.values) }

        let other = AdamW(parameters: try parameters(), settings: AdamWSettings())
        #expect(throws: TrainingError.self) { try other.load(from: dir + "/state.safetensors") }
    }

    @Test("warm-up then cosine to a floor: transformers' get_cosine_with_min_lr_schedule_with_warmup")
    func schedule() throws {
        let expected = try fixture.doubles("schedule")
        let schedule = LearningRateSchedule.warmupCosine(peak: 3e-4, warmupSteps: 4, totalSteps: 20, floor: 3e-5)
        for (step, rate) in expected.enumerated() {
            #expect(abs(schedule.learningRate(atStep: step) - rate) <= 1e-12 * 3e-4, "step \(step)")
        }
        #expect(LearningRateSchedule.constant(1e-3).learningRate(atStep: 99) == 1e-3)
    }
}
