import Foundation

/// The learning rate of each optimizer step.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The same rate at every step.
    case constant(Double)
    /// Linear warm-up from 0 to `peak` over `warmupSteps`, then a half cosine from `peak` down to
    /// `floor` at `totalSteps`, exactly as transformers' `get_cosine_with_min_lr_schedule_with_warmup`
    /// (`min_lr = floor`) with the scheduler stepped after each optimizer step, as its Trainer does (so
    /// with warm-up the first step's rate is 0).
    case warmupCosine(peak: Double, warmupSteps: Int, totalSteps: Int, floor: Double)

    /// The rate of step `step` (0 for the first step).
    public func learningRate(atStep step: Int) -> Double {
        switch self {
        case let .constant(rate):
            return rate
        case let .warmupCosine(peak, warmup, total, floor):
            if step < warmup { return peak * Double(step) / Double(max(1, warmup)) }
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            let minRate = peak == 0 ? 0 : floor / peak
            let factor = 0.5 * (1 + Foundation.cos(Double.pi * 2 * 0.5 * progress)) * (1 - minRate) + minRate
            return peak * max(0, factor)
        }
    }
}
