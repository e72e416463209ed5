// Native objects of abandoned models, schedulers and embedders (Model.abandon): referenced until
// the process ends, because their finalizers would free them, and freeing waits for the engine
// thread or the RPC worker that will never answer.
export const abandoned: unknown[] = [];
