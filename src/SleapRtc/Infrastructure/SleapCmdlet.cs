using System.Collections.Concurrent;
using System.Management.Automation;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Base of every cmdlet that waits on the network. Ctrl+C (StopProcessing) cancels <see cref="StopToken"/>;
/// long work runs on a background task that posts pipeline actions (objects, progress, log lines, prompts) to a
/// queue that the pipeline thread drains, so Write* is only ever called from the pipeline thread.
/// </summary>
public abstract class SleapCmdlet : PSCmdlet, IDisposable
{
    /// <summary>How long a cancelled background task may take to unwind before the cmdlet gives up on it.</summary>
    private static readonly TimeSpan CancellationGrace = TimeSpan.FromSeconds(2);

    private readonly CancellationTokenSource _stop = new();
    private bool _disposed;

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
    protected CancellationToken StopToken => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>
    /// Runs <paramref name="work"/> on the thread pool and pumps the actions it posts until it finishes.
    /// Returns its result, rethrows its exception, and turns Ctrl+C into <see cref="PipelineStoppedException"/>.
    /// </summary>
    protected T RunOnBackground<T>(Func<PipelineQueue, CancellationToken, Task<T>> work, TimeSpan? timeout = null)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(StopToken);
        if (timeout is { } t && t != Timeout.InfiniteTimeSpan) limit.CancelAfter(t);

        var queue = new PipelineQueue();
        var task = Task.Run(() => work(queue, limit.Token), limit.Token);
        // Completing the queue when the work ends lets the pump below return without polling.
        _ = task.ContinueWith(_ => queue.Complete(), TaskScheduler.Default);

        try
        {
            queue.Pump(this, StopToken);
        }
        catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
        {
            queue.Complete();
            // Give the work a moment to unwind (it sees the same token) so it never outlives the cmdlet unobserved.
            try { task.Wait(CancellationGrace); } catch (AggregateException) { }
            ObserveLater(task);
            throw new PipelineStoppedException();
        }

        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (OperationCanceledException) when (timeout is not null && limit.IsCancellationRequested)
        {
            throw new TimeoutException($"The operation did not complete within {timeout.Value.TotalSeconds:0.#} s.");
        }
    }

    protected void RunOnBackground(Func<PipelineQueue, CancellationToken, Task> work, TimeSpan? timeout = null) =>
        RunOnBackground<bool>(async (queue, token) => { await work(queue, token).ConfigureAwait(false); return true; }, timeout);

    private static void ObserveLater(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Actions posted by background work, run on the pipeline thread in the order they were posted.</summary>
public sealed class PipelineQueue
{
    private readonly BlockingCollection<Action<PSCmdlet>> _actions = new();

    public void Post(Action<PSCmdlet> action)
    {
        try { _actions.Add(action); }
        catch (InvalidOperationException) { } // the pump is gone (cmdlet stopped): nothing left to write to
    }

    public void WriteObject(object? value) => Post(c => c.WriteObject(value));
    public void WriteVerbose(string text) => Post(c => c.WriteVerbose(text));
    public void WriteWarning(string text) => Post(c => c.WriteWarning(text));
    public void WriteDebug(string text) => Post(c => c.WriteDebug(text));
    public void WriteProgress(ProgressRecord record) => Post(c => c.WriteProgress(record));
    public void WriteError(ErrorRecord record) => Post(c => c.WriteError(record));
    public void WriteInformation(object data, string[] tags) => Post(c => c.WriteInformation(data, tags));

    /// <summary>Runs a function on the pipeline thread (prompts, ShouldProcess) and awaits its result.</summary>
    public Task<T> InvokeOnPipeline<T>(Func<PSCmdlet, T> function)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(c =>
        {
            try { completion.TrySetResult(function(c)); }
            catch (Exception ex) { completion.TrySetException(ex); }
        });
        if (_actions.IsAddingCompleted) completion.TrySetCanceled();
        return completion.Task;
    }

    // The collection is never disposed on purpose: background work may still post after the pump has returned.
    internal void Complete() => _actions.CompleteAdding();

    internal void Pump(PSCmdlet cmdlet, CancellationToken stop)
    {
        while (_actions.TryTake(out var action, Timeout.Infinite, stop))
        {
            action(cmdlet);
        }
    }
}
