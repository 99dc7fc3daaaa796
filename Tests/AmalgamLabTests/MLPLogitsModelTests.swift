import AmalgamLab
import AmalgamModels
import Testing

@Test("the MLP classifier computes relu(x·W1 + b1)·W2 + b2 over its flat parameters")
func mlpMatchesNaiveLoops() throws {
    let I = 5, H = 7, O = 3, N = 9
    var seed: UInt32 = 12345
    func next() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(seed >> 8) / Float(1 << 24) - 0.5 }
    let count = MLPLogitsModel.parameterCount(input: I, hidden: H, output: O)
    #expect(count == I * H + H + H * O + O)
    let p = (0..<count).map { _ in next() }
    let x = Matrix(rows: N, cols: I, values: (0..<(N * I)).map { _ in next() })
    let model = try MLPLogitsModel(inputCount: I, hiddenCount: H, outputCount: O, parameters: p)
    let logits = try model.logits(x)
    let (w1, b1, w2, b2) = model.offsets
    for n in 0..<N {
        var hidden = [Float](repeating: 0, count: H)
        for h in 0..<H {
            var s = p[b1 + h]
            for i in 0..<I { s += x.values[n * I + i] * p[w1 + i * H + h] }
            hidden[h] = max(0, s)
        }
        for o in 0..<O {
            var s = p[b2 + o]
            for h in 0..<H { s += hidden[h] * p[w2 + h * O + o] }
            #expect(abs(logits.values[n * O + o] - s) <= 1e-5)
        }
    }
    let labels = logits.argmaxPerRow()
    #expect(try model.accuracy(x, labels: labels) == 1)
}

@Test("a parameter vector of the wrong size is refused, naming the layout")
func mlpRejectsWrongParameterCount() {
    #expect(throws: ModelError.parameterCount(expected: 64 * 256 + 256 + 256 * 10 + 10, actual: 3,
                                              layout: "[W1 64×256, b1 256, W2 256×10, b2 10]")) {
        try MLPLogitsModel(inputCount: 64, hiddenCount: 256, outputCount: 10, parameters: [1, 2, 3])
    }
}
