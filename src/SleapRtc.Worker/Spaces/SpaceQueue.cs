namespace SleapRtc.Worker.Spaces;

/// <summary>
/// One request at a time, first come first served (SemaphoreSlim promises no order). A request enters when
/// its upload is complete; disposing the returned turn lets the next one run. Cancelling a waiting request
/// takes it out of the line.
/// </summary>
public sealed class SpaceQueue
{
    private readonly object _gate = new();
    private readonly LinkedList<TaskCompletionSource<IDisposable>> _waiting = new();
    private bool _running;

    /// <summary>Requests waiting or running.</summary>
    public int Length { get { lock (_gate) return _waiting.Count + (_running ? 1 : 0); } }

    /// <summary>Raised (outside the lock) whenever <see cref="Length"/> changes.</summary>
    public event Action<int>? LengthChanged;

    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource<IDisposable> ticket;
        LinkedListNode<TaskCompletionSource<IDisposable>>? node = null;
        lock (_gate)
        {
            ticket = new TaskCompletionSource<IDisposable>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_running)
            {
                _running = true;
                ticket.SetResult(new Turn(this));
            }
            else
            {
                node = _waiting.AddLast(ticket);
            }
        }
        Changed();
        if (node is null) return await ticket.Task.ConfigureAwait(false);
        using (cancellationToken.Register(() => Leave(node)))
            return await ticket.Task.ConfigureAwait(false);
    }

    private void Leave(LinkedListNode<TaskCompletionSource<IDisposable>> node)
    {
        lock (_gate)
        {
            // Already handed its turn: it runs and releases as usual.
            if (node.List is null) return;
            _waiting.Remove(node);
        }
        node.Value.TrySetCanceled();
        Changed();
    }

    private void Release()
    {
        lock (_gate)
        {
            if (_waiting.First is { } next)
            {
                _waiting.RemoveFirst();
                next.Value.TrySetResult(new Turn(this));
            }
            else
            {
                _running = false;
            }
        }
        Changed();
    }

    private void Changed() => LengthChanged?.Invoke(Length);

    private sealed class Turn : IDisposable
    {
        private SpaceQueue? _queue;
        public Turn(SpaceQueue queue) => _queue = queue;
        public void Dispose() => Interlocked.Exchange(ref _queue, null)?.Release();
    }
}
