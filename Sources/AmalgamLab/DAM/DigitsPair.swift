import AmalgamCheckpoint
import AmalgamCore
import AmalgamMerge
import AmalgamModels
import AmalgamSearch

/// A base MLP and two specialists on scikit-learn's digits, the shared testbed of the merging methods
/// that start from fine-tunes of one base (DAM, task arithmetic, TIES, CMA-ES over recipes, M2N2):
/// the base is trained on every training digit; specialist 0 is the base fine-tuned on digits 0–4 only,
/// specialist 1 on digits 5–9 only, each long enough to forget the other half. With the default recipe
/// (`Recipe.original`, seed 0) the base scores 90.8 % on the test split (100 % on training: the last 360 images are hard
/// for this unnormalised MLP, and PyTorch's Adam on the same recipe gives the same), the specialists
/// about 95–97 % on their own half and 15–27 % on the other.
///
/// The split is the reference one (first 80 % of the file for training, last 20 % for test, file order,
/// features 0–16 not normalised); the classifier is the M2N2 experiment's 64 → 256 (ReLU) → 10 MLP in
/// `MLPClassifier`'s flat layout `[W1 (64×256), b1, W2 (256×10), b2]`.
public struct DigitsPair: Sendable {
    /// How the base and the specialists are trained (full-batch Adam, β (0.9, 0.999), ε 1e-8).
    public struct Recipe: Sendable, Equatable, Codable {
        /// Adam steps of the base on all training digits, from N(0, 0.01²).
        public var baseSteps = 300
        /// Learning rate of the base.
        public var baseLearningRate = 3e-3
        /// Adam steps of each specialist on its half, from the base.
        public var specialistSteps = 100
        /// Learning rate of the specialists.
        public var specialistLearningRate = 3e-3

        /// The default recipe (`original`).
        public init() {}

        /// A recipe with every number given.
        public init(baseSteps: Int, baseLearningRate: Double, specialistSteps: Int, specialistLearningRate: Double) {
            self.baseSteps = baseSteps
            self.baseLearningRate = baseLearningRate
            self.specialistSteps = specialistSteps
            self.specialistLearningRate = specialistLearningRate
        }

        /// The first testbed: base 300 steps (100 % on training), specialists 100 steps at 3e-3. Their
        /// average recovers the base, so every merging method ties with it.
        public static let original = Recipe()

        /// The comparison's testbed, set up as DAM's and the task-vector papers set theirs up: a base
        /// trained briefly (10 steps: about 94 % on training, 86 % on test, far from its ceiling) and
        /// specialists fine-tuned hard from it (300 steps at lr 1e-2: 93–97 % on their own half, 0 % on the
        /// other), so that their average interferes: in PyTorch with this recipe
        /// (`scripts/experiments/digits_pair_torch.py --runs 5`) it scores 82.6 ± 1.6 % on test (84.6 on 0–4,
        /// 80.7 on 5–9) against the base's 85.3 ± 0.5, below the base and below each specialist on its own half.
        public static let divergent = Recipe(baseSteps: 10, baseLearningRate: 3e-3, specialistSteps: 300,
                                             specialistLearningRate: 1e-2)

        /// The named recipes, by name.
        public static let named: [String: Recipe] = ["original": original, "divergent": divergent]

        /// A one-line description for reports.
        public var summary: String {
            "base \(baseSteps) Adam steps at lr \(baseLearningRate) on all digits, specialists \(specialistSteps) steps at lr \(specialistLearningRate) on 0-4 / 5-9"
        }
    }

    /// The digits each specialist is trained on, in specialist order.
    public static let halves: [ClosedRange<Int32>] = [0...4, 5...9]

    /// The network's shape (64 → 256 → 10).
    public let classifier: MLPClassifier
    /// The base, trained on all training digits.
    public let base: [Float]
    /// The specialists, fine-tuned from the base on digits 0–4 and 5–9.
    public let specialists: [[Float]]
    /// Training split (first 1437 images).
    public let train: MLPBatch
    /// Test split (last 360 images).
    public let test: MLPBatch
    /// Training examples of each half, in `halves` order (file order within a half).
    public let trainHalves: [MLPBatch]
    /// Test examples of each half.
    public let testHalves: [MLPBatch]
    /// The recipe used.
    public let recipe: Recipe
    /// The seed of the base's initial N(0, 0.01²) parameters.
    public let seed: UInt64

    /// Trains the base from N(0, 0.01²) drawn from `seed`, then the two specialists from it.
    /// Deterministic: the same dataset, seed and recipe give the same bytes.
    public static func make(dataset: DigitsDataset, seed: UInt64, recipe: Recipe = Recipe(),
                            classifier: MLPClassifier = .digits) -> DigitsPair {
        let (train, test) = dataset.split()
        let trainHalves = halves.map { h in train.filter { h.contains($0) } }
        let testHalves = halves.map { h in test.filter { h.contains($0) } }
        var g = SeededGenerator(seed: seed, stream: 7)
        let initial = (0..<classifier.parameterCount).map { _ in 0.01 * g.normal() }
        let base = classifier.trainAdam(parameters: initial, batch: train, steps: recipe.baseSteps,
                                        learningRate: recipe.baseLearningRate)
        let specialists = trainHalves.map {
            classifier.trainAdam(parameters: base, batch: $0, steps: recipe.specialistSteps,
                                 learningRate: recipe.specialistLearningRate)
        }
        return DigitsPair(classifier: classifier, base: base, specialists: specialists, train: train, test: test,
                          trainHalves: trainHalves, testHalves: testHalves, recipe: recipe, seed: seed)
    }

    /// Test accuracy of `parameters` on the union of the test split and on each half's test examples.
    public func testAccuracies(of parameters: [Float]) -> DigitsAccuracies {
        DigitsAccuracies(union: classifier.accuracy(parameters: parameters, batch: test),
                         halves: testHalves.map { classifier.accuracy(parameters: parameters, batch: $0) })
    }

    /// Training accuracy of `parameters` on the union and on each half.
    public func trainAccuracies(of parameters: [Float]) -> DigitsAccuracies {
        DigitsAccuracies(union: classifier.accuracy(parameters: parameters, batch: train),
                         halves: trainHalves.map { classifier.accuracy(parameters: parameters, batch: $0) })
    }
}

/// Accuracy (fraction correct) on a whole split and on each half of the digits (0–4, 5–9).
public struct DigitsAccuracies: Sendable, Equatable, Codable {
    /// On every example of the split.
    public var union: Double
    /// On the examples of digits 0–4, then 5–9.
    public var halves: [Double]

    /// Accuracies as measured.
    public init(union: Double, halves: [Double]) {
        self.union = union
        self.halves = halves
    }
}
