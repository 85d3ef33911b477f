using System.Buffers;
using System.Text;
using SleapRtc.WebRtc.Sctp;

namespace SleapRtc.WebRtc.DataChannels;

/// <summary>
/// An ordered, reliable WebRTC data channel on one SCTP stream. BufferedAmount counts bytes accepted by
/// Send and not yet acknowledged by the peer. Created by <see cref="SctpAssociation"/>.
/// </summary>
public sealed class RtcDataChannel : IDataChannel, ISctpSendOwner
{
    private readonly SctpAssociation _association;
    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closedTask = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;
    private long _bufferedAmount;
    private long _bufferedAmountLowThreshold;
    private int _closedRaised;
    private List<(long Mark, TaskCompletionSource Waiter)>? _drainWaiters;

    internal RtcDataChannel(SctpAssociation association, ushort streamId, string label, string protocol, int maxMessageSize, DataChannelState state)
    {
        _association = association;
        StreamId = streamId;
        Label = label;
        Protocol = protocol;
        MaxMessageSize = maxMessageSize;
        _state = (int)state;
        if (state == DataChannelState.Open) _opened.TrySetResult();
    }

    public string Label { get; }
    public string Protocol { get; }
    public ushort StreamId { get; }
    public int MaxMessageSize { get; }
    public DataChannelState State => (DataChannelState)Volatile.Read(ref _state);
    public long BufferedAmount => Interlocked.Read(ref _bufferedAmount);

    public long BufferedAmountLowThreshold
    {
        get => Interlocked.Read(ref _bufferedAmountLowThreshold);
        set => Interlocked.Exchange(ref _bufferedAmountLowThreshold, value < 0 ? 0 : value);
    }

    public event Action? BufferedAmountLow;
    public event Action<DataChannelMessage>? MessageReceived;
    public event Action<Exception?>? Closed;

    internal Task Opened => _opened.Task;
    internal bool OutgoingResetRequested { get; set; }
    internal bool OutgoingResetDone { get; set; }
    internal bool IncomingResetDone { get; set; }

    public void Send(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            SendPooled(Ppid.StringEmpty, RentSingleZero(), 1);
            return;
        }
        int length = Encoding.UTF8.GetByteCount(text);
        CheckSize(length);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        Encoding.UTF8.GetBytes(text, buffer);
        SendPooled(Ppid.String, buffer, length);
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            SendPooled(Ppid.BinaryEmpty, RentSingleZero(), 1);
            return;
        }
        CheckSize(data.Length);
        var buffer = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(buffer);
        SendPooled(Ppid.Binary, buffer, data.Length);
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> data, long highWaterMark, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Send(data.Span);
        if (BufferedAmount <= highWaterMark) return ValueTask.CompletedTask;
        return new ValueTask(_association.WaitForBufferedAmountAsync(this, highWaterMark).WaitAsync(cancellationToken));
    }

    /// <summary>Resets the outgoing stream (RFC 8831 §6.7); completes when both directions are closed.</summary>
    public Task CloseAsync(CancellationToken cancellationToken)
    {
        _association.CloseChannel(this);
        return _closedTask.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (State == DataChannelState.Closed) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await CloseAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _association.ForgetChannel(this, new TimeoutException("the peer did not confirm the channel close"));
        }
    }

    private void CheckSize(int length)
    {
        if (length > MaxMessageSize)
        {
            throw new ArgumentException($"message of {length} bytes exceeds the remote max-message-size of {MaxMessageSize}");
        }
    }

    private static byte[] RentSingleZero()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1);
        buffer[0] = 0;
        return buffer;
    }

    private void SendPooled(uint ppid, byte[] buffer, int length)
    {
        try
        {
            _association.SendOnChannel(this, ppid, buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    // ---- called by the association under its lock ----

    internal void SetState(DataChannelState state) => Volatile.Write(ref _state, (int)state);

    internal void AddBuffered(int count) => Interlocked.Add(ref _bufferedAmount, count);

    internal void MarkOpen()
    {
        SetState(DataChannelState.Open);
        _opened.TrySetResult();
    }

    /// <summary>Returns true when the channel was not closed before (the caller queues the Closed event).</summary>
    internal bool MarkClosed(Exception? error)
    {
        if (State == DataChannelState.Closed) return false;
        SetState(DataChannelState.Closed);
        _opened.TrySetException(error ?? new InvalidOperationException("the data channel closed before it opened"));
        _ = _opened.Task.Exception;
        _closedTask.TrySetResult();
        if (_drainWaiters is not null)
        {
            foreach (var (_, waiter) in _drainWaiters) waiter.TrySetException(new InvalidOperationException("the data channel closed", error));
            _drainWaiters = null;
        }
        return true;
    }

    internal Task AddDrainWaiter(long mark)
    {
        if (BufferedAmount <= mark) return Task.CompletedTask;
        if (State == DataChannelState.Closed) return Task.FromException(new InvalidOperationException("the data channel is closed"));
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        (_drainWaiters ??= new()).Add((mark, waiter));
        return waiter.Task;
    }

    void ISctpSendOwner.OnBytesAcknowledged(int count)
    {
        long after = Interlocked.Add(ref _bufferedAmount, -count);
        long threshold = BufferedAmountLowThreshold;
        if (after + count > threshold && after <= threshold)
        {
            _association.QueueEvent(new PendingEvent(PendingEventKind.BufferedAmountLow, this));
        }
        if (_drainWaiters is { Count: > 0 } waiters)
        {
            for (int i = waiters.Count - 1; i >= 0; i--)
            {
                if (after > waiters[i].Mark) continue;
                waiters[i].Waiter.TrySetResult();
                waiters.RemoveAt(i);
            }
        }
    }

    // ---- raised by the association outside its lock, on its event thread ----

    internal void RaiseMessage(uint ppid, byte[] buffer, int length)
    {
        var handler = MessageReceived;
        if (handler is null) return;
        var message = ppid switch
        {
            Ppid.String or 54 => new DataChannelMessage(Encoding.UTF8.GetString(buffer, 0, length)),
            Ppid.StringEmpty => new DataChannelMessage(string.Empty),
            Ppid.BinaryEmpty => new DataChannelMessage(ReadOnlyMemory<byte>.Empty),
            _ => new DataChannelMessage(new ReadOnlyMemory<byte>(buffer, 0, length)),
        };
        handler(message);
    }

    internal void RaiseClosed(Exception? error)
    {
        if (Interlocked.Exchange(ref _closedRaised, 1) == 0) Closed?.Invoke(error);
    }

    internal void RaiseBufferedAmountLow() => BufferedAmountLow?.Invoke();
}
