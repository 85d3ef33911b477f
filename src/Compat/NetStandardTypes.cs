#if !NET8_0_OR_GREATER
using System.Runtime.CompilerServices;

// BCL types of .NET Core 3+ that our code uses, for the netstandard2.0 build. Each mirrors the subset of the
// runtime's public surface we call, with the same semantics.

namespace System.Buffers
{
    /// <summary>A growable buffer writer over one array (the runtime's ArrayBufferWriter).</summary>
    internal sealed class ArrayBufferWriter<T> : IBufferWriter<T>
    {
        private T[] _buffer;
        private int _written;

        public ArrayBufferWriter() : this(256) { }
        public ArrayBufferWriter(int initialCapacity) => _buffer = new T[Math.Max(1, initialCapacity)];

        public ReadOnlyMemory<T> WrittenMemory => _buffer.AsMemory(0, _written);
        public ReadOnlySpan<T> WrittenSpan => _buffer.AsSpan(0, _written);
        public int WrittenCount => _written;
        public int Capacity => _buffer.Length;
        public int FreeCapacity => _buffer.Length - _written;

        public void Clear()
        {
            _buffer.AsSpan(0, _written).Clear();
            _written = 0;
        }

        public void ResetWrittenCount() => _written = 0;

        public void Advance(int count)
        {
            if (count < 0 || _written + count > _buffer.Length) throw new ArgumentOutOfRangeException(nameof(count));
            _written += count;
        }

        public Memory<T> GetMemory(int sizeHint = 0)
        {
            Reserve(sizeHint);
            return _buffer.AsMemory(_written);
        }

        public Span<T> GetSpan(int sizeHint = 0)
        {
            Reserve(sizeHint);
            return _buffer.AsSpan(_written);
        }

        private void Reserve(int sizeHint)
        {
            if (sizeHint < 0) throw new ArgumentOutOfRangeException(nameof(sizeHint));
            var needed = Math.Max(sizeHint, 1);
            if (FreeCapacity >= needed) return;
            var size = Math.Max(_buffer.Length * 2, _written + needed);
            Array.Resize(ref _buffer, size);
        }
    }
}

namespace System.Net.WebSockets
{
    /// <summary>The allocation-free receive result of .NET Core's WebSocket.ReceiveAsync(Memory).</summary>
    internal readonly struct ValueWebSocketReceiveResult(int count, WebSocketMessageType messageType, bool endOfMessage)
    {
        public int Count { get; } = count;
        public WebSocketMessageType MessageType { get; } = messageType;
        public bool EndOfMessage { get; } = endOfMessage;
    }
}

namespace System.Threading.Tasks
{
    [Flags]
    internal enum ConfigureAwaitOptions
    {
        None = 0,
        ContinueOnCapturedContext = 1,
        SuppressThrowing = 2,
    }
}

namespace System.Security.Cryptography
{
    internal static class CryptographicOperations
    {
        /// <summary>Compares without an early exit, so timing does not reveal where two secrets differ.</summary>
        public static bool FixedTimeEquals(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
        {
            if (left.Length != right.Length) return false;
            var difference = 0;
            for (var i = 0; i < left.Length; i++) difference |= left[i] ^ right[i];
            return difference == 0;
        }
    }
}

namespace System.Threading
{
    /// <summary>Ticks every period; one waiter at a time (the runtime's PeriodicTimer, without drift correction).</summary>
    internal sealed class PeriodicTimer(TimeSpan period) : IDisposable
    {
        private readonly CancellationTokenSource _disposed = new();
        private long _nextTick = Environment.TickCount64 + (long)period.TotalMilliseconds;

        public async ValueTask<bool> WaitForNextTickAsync(CancellationToken cancellationToken = default)
        {
            if (_disposed.IsCancellationRequested) return false;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
            var wait = _nextTick - Environment.TickCount64;
            try
            {
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait), linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_disposed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            _nextTick = Math.Max(_nextTick + (long)period.TotalMilliseconds, Environment.TickCount64);
            return true;
        }

        public void Dispose() => _disposed.Cancel();
    }
}
#endif
