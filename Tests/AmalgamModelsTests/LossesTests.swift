import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import AmalgamTestSupport
import Foundation
import Testing

/// Tensors of a fixture file made by `scripts/fixtures/make_training_fixtures.py`, as f32 / f64 arrays.
struct TrainingFixture {
    let file: SafetensorsFile
    init(_ name: String) throws { file = try SafetensorsFile(path: fixturesDirectory + "/training/" + name) }
    func floats(_ name: String) throws -> [Float] { try file.tensor(name).floats() }
    func doubles(_ name: String) throws -> [Double] {
        let t = try file.tensor(name)
        return t.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }
    func ints(_ name: String) throws -> [Int] { try floats(name).map { Int($0) } }
}

/// ‖a − b‖ / ‖b‖ over a whole tensor: the per-tensor criterion of the gradient checks.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); norm += Double(y) * Double(y) }
    return (diff / max(norm, 1e-300)).squareRoot()
}

@Suite("Training losses match PyTorch")
struct LossesTests {
    let fixture: TrainingFixture
    let logits: [Float], teacher: [Float], targets: [Int], counted: [Bool]
    let V = 50

    init() throws {
        fixture = try TrainingFixture("losses.safetensors")
        logits = try fixture.floats("logits")
        teacher = try fixture.floats("teacher")
        targets = try fixture.ints("targets")
        counted = try fixture.floats("counted").map { $0 != 0 }
    }

    @Test("cross-entropy with ignored rows: loss and gradient as F.cross_entropy")
    func crossEntropy() throws {
        let (loss, count, gradient) = Losses.crossEntropy(logits: logits, vocabulary: V, targets: targets)
        #expect(count == targets.filter { $0 >= 0 }.count)
        #expect(abs(loss - (try fixture.doubles("ce_loss")[0])) < 1e-5 * abs(loss))
        #expect(relativeError(gradient, try fixture.floats("ce_grad")) < 1e-5)
        #expect(gradient.allSatisfy { $0.isFinite })
        // an ignored row has zero gradient
        #expect(gradient[(3 * V)..<(4 * V)].allSatisfy { $0 == 0 })
    }

    @Test("cross-entropy in place: the logits buffer becomes the gradient")
    func crossEntropyInPlace() {
        var buffer = logits
        let count = targets.filter { $0 >= 0 }.count
        let rows = targets.count
        let total = buffer.withUnsafeMutableBufferPointer { b in
            Losses.crossEntropy(b.baseAddress!, rows: rows, vocabulary: V, targets: targets, dlogits: b.baseAddress!,
                                gradientScale: 1 / Float(count))
        }
        let reference = Losses.crossEntropy(logits: logits, vocabulary: V, targets: targets)
        #expect(total.mean == reference.loss)
        #expect(buffer == reference.gradient)
    }

    @Test("distillation KL at T = 2 over the full vocabulary, as F.kl_div · T²")
    func distillationFull() throws {
        let (loss, count, gradient) = Losses.distillation(student: logits, teacher: teacher, vocabulary: V,
                                                           temperature: 2, counted: counted)
        #expect(count == counted.filter { $0 }.count)
        let expected = try fixture.doubles("kl_loss")[0]
        #expect(abs(loss - expected) < 1e-5 * abs(expected))
        #expect(relativeError(gradient, try fixture.floats("kl_grad")) < 1e-5)
    }

    @Test("distillation over the teacher's top 8 logits only, as F.kl_div on the gathered logits")
    func distillationTopK() throws {
        let (loss, _, gradient) = Losses.distillation(student: logits, teacher: teacher, vocabulary: V,
                                                       temperature: 2, topK: 8, counted: counted)
        let expected = try fixture.doubles("kl_topk_loss")[0]
        #expect(abs(loss - expected) < 1e-5 * abs(expected))
        #expect(relativeError(gradient, try fixture.floats("kl_topk_grad")) < 1e-5)
        // only k entries per counted row carry gradient
        for r in 0..<targets.count where counted[r] {
            #expect(gradient[(r * V)..<((r + 1) * V)].filter { $0 != 0 }.count == 8)
        }
    }

    @Test("a student equal to its teacher has zero distillation loss and gradient")
    func distillationOfItself() {
        let (loss, _, gradient) = Losses.distillation(student: teacher, teacher: teacher, vocabulary: V)
        #expect(abs(loss) < 1e-9)
        #expect(gradient.allSatisfy { abs($0) < 1e-7 })
    }
}
