"""plux entry point: `LAMBDA_RUNTIME_EXECUTOR=process` selects the process runtime executor."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "process"

    def load(self, *args, **kwargs):
        from lab_platform.executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor
