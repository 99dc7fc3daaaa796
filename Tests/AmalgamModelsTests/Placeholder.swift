import Testing
import AmalgamModels

@Test func modelsModuleBuilds() {}
