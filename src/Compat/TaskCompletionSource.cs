#if !NET8_0_OR_GREATER
namespace System.Threading.Tasks;

/// <summary>The non-generic completion source of .NET 5+, for the netstandard2.0 build.</summary>
internal sealed class TaskCompletionSource
{
    private readonly TaskCompletionSource<bool> _inner;

    public TaskCompletionSource() => _inner = new TaskCompletionSource<bool>();
    public TaskCompletionSource(TaskCreationOptions options) => _inner = new TaskCompletionSource<bool>(options);

    public Task Task => _inner.Task;
    public void SetResult() => _inner.SetResult(true);
    public bool TrySetResult() => _inner.TrySetResult(true);
    public void SetException(Exception exception) => _inner.SetException(exception);
    public bool TrySetException(Exception exception) => _inner.TrySetException(exception);
    public void SetCanceled() => _inner.SetCanceled();
    public bool TrySetCanceled() => _inner.TrySetCanceled();
    public bool TrySetCanceled(CancellationToken cancellationToken) => _inner.TrySetCanceled(cancellationToken);
}
#endif
