// Classifier training: loader, objectives, schedules, checkpoints and exact resume.
// Architecture tests are in test_train_arch.cpp.
