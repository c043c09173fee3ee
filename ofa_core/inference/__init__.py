"""Running a trained model: finding it (a model or run directory), turning inputs into records, and the
`Predictor` that decodes them with a task's prompt, search, closed set and postprocess."""
