using System.Threading.Channels;
using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// TEST-ONLY: two connected IDataChannel ends in one process, used to exercise the job protocol before and
/// apart from the real WebRTC stack. Messages are delivered in order on one thread per receiving end; the
/// sender's BufferedAmount counts bytes not yet delivered, so back-pressure behaves as on a real channel.
/// </summary>
internal sealed class InProcessChannelPair : IAsyncDisposable
{
    public InProcessChannelPair(int maxMessageSize = 65536)
    {
        Client = new End("my-data-channel", maxMessageSize);
        Worker = new End("my-data-channel", maxMessageSize);
        Client.Connect(Worker);
        Worker.Connect(Client);
    }

    public End Client { get; }
    public End Worker { get; }

    /// <summary>Simulates the peer vanishing: both ends close at once, with an error.</summary>
    public void Sever()
    {
        Client.CloseLocal(new IOException("peer vanished"));
        Worker.CloseLocal(new IOException("peer vanished"));
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Worker.DisposeAsync();
    }

    internal sealed class End : IDataChannel
    {
        private readonly Channel<(string? Text, byte[]? Binary)> _inbox = Channel.CreateUnbounded<(string?, byte[]?)>(new UnboundedChannelOptions { SingleReader = true });
        private End? _peer;
        private long _inFlight;
        private int _closed;
        private readonly Task _pump;

        public End(string label, int maxMessageSize)
        {
            Label = label;
            MaxMessageSize = maxMessageSize;
            _pump = Task.Run(PumpAsync);
        }

        public string Label { get; }
        public ushort StreamId => 0;
        public DataChannelState State => Volatile.Read(ref _closed) == 0 ? DataChannelState.Open : DataChannelState.Closed;
        public long BufferedAmount => Interlocked.Read(ref _inFlight);
        public long BufferedAmountLowThreshold { get; set; }
        public int MaxMessageSize { get; }
        public int TextMessagesSent;
        public long BinaryBytesSent;

        public event Action? BufferedAmountLow;
        public event Action<DataChannelMessage>? MessageReceived;
        public event Action<Exception?>? Closed;

        internal void Connect(End peer) => _peer = peer;

        public void Send(string text)
        {
            EnsureOpen();
            Interlocked.Increment(ref TextMessagesSent);
            _peer!.Enqueue(text, null, this);
        }

        public void Send(ReadOnlySpan<byte> data)
        {
            EnsureOpen();
            if (data.Length > MaxMessageSize) throw new ArgumentException("message larger than max-message-size");
            Interlocked.Add(ref BinaryBytesSent, data.Length);
            Interlocked.Add(ref _inFlight, data.Length);
            _peer!.Enqueue(null, data.ToArray(), this);
        }

        public async ValueTask SendAsync(ReadOnlyMemory<byte> data, long highWaterMark, CancellationToken cancellationToken)
        {
            Send(data.Span);
            while (BufferedAmount > highWaterMark) await Task.Delay(1, cancellationToken);
        }

        public Task CloseAsync(CancellationToken cancellationToken)
        {
            CloseLocal(null);
            _peer?.CloseLocal(null);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            CloseLocal(null);
            _peer?.CloseLocal(null);
            return ValueTask.CompletedTask;
        }

        internal void CloseLocal(Exception? error)
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0) return;
            _inbox.Writer.TryComplete();
            Task.Run(() => Closed?.Invoke(error));
        }

        private void Enqueue(string? text, byte[]? binary, End sender)
        {
            if (!_inbox.Writer.TryWrite((text, binary)))
            {
                if (binary is not null) Interlocked.Add(ref sender._inFlight, -binary.Length);
                return;
            }
        }

        private async Task PumpAsync()
        {
            await foreach (var (text, binary) in _inbox.Reader.ReadAllAsync())
            {
                try
                {
                    if (text is not null) MessageReceived?.Invoke(new DataChannelMessage(text));
                    else MessageReceived?.Invoke(new DataChannelMessage(binary!));
                }
                finally
                {
                    if (binary is not null && _peer is not null)
                    {
                        if (Interlocked.Add(ref _peer._inFlight, -binary.Length) <= _peer.BufferedAmountLowThreshold)
                            _peer.BufferedAmountLow?.Invoke();
                    }
                }
            }
        }

        private void EnsureOpen()
        {
            if (State != DataChannelState.Open) throw new InvalidOperationException("The data channel is closed.");
        }
    }
}
