"""Lambda's event-source mappings, emulated for the local stack (local/pollers.py runs them;
its docstring says which AWS behaviours they reproduce): one module per source kind (sqs,
streams), beside what they share (settings, clients, invoke, runner) and the supervisor that
follows the mappings in the emulator."""
