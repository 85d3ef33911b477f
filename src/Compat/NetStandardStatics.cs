#if !NET8_0_OR_GREATER
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace SleapRtc.Compat;

/// <summary>
/// Static members of newer BCL types (guards, Math.Clamp, Random.Shared...), as C# 14 static extensions for the
/// netstandard2.0 build, so the shared source reads the same on both targets.
/// </summary>
internal static class NetStandardStatics
{
    [ThreadStatic] private static Random? t_random;

    extension(ArgumentNullException)
    {
        public static void ThrowIfNull([NotNull] object? argument, [CallerArgumentExpression(nameof(argument))] string? paramName = null)
        {
            if (argument is null) throw new ArgumentNullException(paramName);
        }
    }

    extension(ArgumentException)
    {
        public static void ThrowIfNullOrEmpty([NotNull] string? argument, [CallerArgumentExpression(nameof(argument))] string? paramName = null)
        {
            if (argument is null) throw new ArgumentNullException(paramName);
            if (argument.Length == 0) throw new ArgumentException("The value cannot be an empty string.", paramName);
        }

        public static void ThrowIfNullOrWhiteSpace([NotNull] string? argument, [CallerArgumentExpression(nameof(argument))] string? paramName = null)
        {
            if (argument is null) throw new ArgumentNullException(paramName);
            if (string.IsNullOrWhiteSpace(argument)) throw new ArgumentException("The value cannot be empty or white space.", paramName);
        }
    }

    extension(ArgumentOutOfRangeException)
    {
        public static void ThrowIfNegative(long value, [CallerArgumentExpression(nameof(value))] string? paramName = null)
        {
            if (value < 0) throw new ArgumentOutOfRangeException(paramName, value, "The value must not be negative.");
        }

        public static void ThrowIfNegativeOrZero(long value, [CallerArgumentExpression(nameof(value))] string? paramName = null)
        {
            if (value <= 0) throw new ArgumentOutOfRangeException(paramName, value, "The value must be positive.");
        }
    }

    extension(ObjectDisposedException)
    {
        public static void ThrowIf([DoesNotReturnIf(true)] bool condition, object instance)
        {
            if (condition) throw new ObjectDisposedException(instance.GetType().FullName);
        }
    }

    extension(Math)
    {
        public static int Clamp(int value, int min, int max) => value < min ? min : value > max ? max : value;
        public static long Clamp(long value, long min, long max) => value < min ? min : value > max ? max : value;
        public static double Clamp(double value, double min, double max) => value < min ? min : value > max ? max : value;
    }

    extension(Random)
    {
        /// <summary>One generator per thread: System.Random is not thread-safe on .NET Framework.</summary>
        public static Random Shared => t_random ??= new Random(Guid.NewGuid().GetHashCode());
    }

    extension(ValueTask)
    {
        public static ValueTask CompletedTask => default;
    }

    extension(Array)
    {
        public static void Clear(Array array) => Array.Clear(array, 0, array.Length);
    }

    extension(IncrementalHash)
    {
        public static IncrementalHash CreateHMAC(HashAlgorithmName algorithm, ReadOnlySpan<byte> key) =>
            IncrementalHash.CreateHMAC(algorithm, key.ToArray());
    }

    extension(IncrementalHash hash)
    {
        public void AppendData(ReadOnlySpan<byte> data) => hash.AppendData(data.ToArray());

        public int GetHashAndReset(Span<byte> destination)
        {
            var digest = hash.GetHashAndReset();
            digest.CopyTo(destination);
            return digest.Length;
        }
    }

    extension(Encoding encoding)
    {
        public string GetString(ReadOnlySpan<byte> bytes) => encoding.GetString(bytes.ToArray());

        public int GetBytes(string text, Span<byte> destination)
        {
            var bytes = encoding.GetBytes(text);
            bytes.CopyTo(destination);
            return bytes.Length;
        }
    }

    extension(Dns)
    {
        public static Task<IPAddress[]> GetHostAddressesAsync(string host, AddressFamily family, CancellationToken cancellationToken) =>
            FilterAsync(Dns.GetHostAddressesAsync(host).WaitAsync(cancellationToken), family);
    }

    private static async Task<IPAddress[]> FilterAsync(Task<IPAddress[]> lookup, AddressFamily family) =>
        (await lookup.ConfigureAwait(false)).Where(address => address.AddressFamily == family).ToArray();

    extension(char)
    {
        public static bool IsAsciiLetterOrDigit(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9';
        public static bool IsAsciiDigit(char c) => c is >= '0' and <= '9';
        public static bool IsAsciiHexDigit(char c) => c is >= '0' and <= '9' or >= 'a' and <= 'f' or >= 'A' and <= 'F';
    }

    extension(double)
    {
        public static bool IsFinite(double value) => !double.IsNaN(value) && !double.IsInfinity(value);
    }

    extension(Encoding)
    {
        public static Encoding Latin1 => Encoding.GetEncoding("iso-8859-1");
    }

    extension(Convert)
    {
        public static string ToBase64String(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes.ToArray());
    }

    extension(OperatingSystem)
    {
        public static bool IsWindows() => RuntimeInformation.IsOSPlatform(OSPlatform.Windows);
        public static bool IsLinux() => RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
        public static bool IsMacOS() => RuntimeInformation.IsOSPlatform(OSPlatform.OSX);
    }

    extension(Path)
    {
        public static string GetRelativePath(string relativeTo, string path)
        {
            var from = Path.GetFullPath(relativeTo).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
            var to = Path.GetFullPath(path);
            var comparison = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            if (to.StartsWith(from, comparison)) return to.Substring(from.Length);
            if (string.Equals(to + Path.DirectorySeparatorChar, from, comparison)) return ".";
            var relative = new Uri(from).MakeRelativeUri(new Uri(to));
            return Uri.UnescapeDataString(relative.ToString()).Replace('/', Path.DirectorySeparatorChar);
        }
    }

    extension(File)
    {
        public static void Move(string source, string destination, bool overwrite)
        {
            if (overwrite && File.Exists(destination))
            {
                // Replace keeps the swap atomic on NTFS; a missing destination was handled above.
                File.Replace(source, destination, null);
                return;
            }
            File.Move(source, destination);
        }
    }

    extension(System.Diagnostics.ProcessStartInfo start)
    {
        /// <summary>Arguments added one by one and quoted for the Windows command-line parser (ArgumentList of .NET Core).</summary>
        public ProcessArgumentList ArgumentList => new(start);
    }

    extension(System.Diagnostics.Process process)
    {
        /// <summary>Kills the process and, on Windows, its descendants (taskkill /T).</summary>
        public void Kill(bool entireProcessTree)
        {
            if (entireProcessTree && RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                try
                {
                    using var killer = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("taskkill", $"/T /F /PID {process.Id}")
                    {
                        UseShellExecute = false,
                        CreateNoWindow = true,
                    });
                    if (killer is not null && killer.WaitForExit(10_000) && process.WaitForExit(1_000)) return;
                }
                catch (System.ComponentModel.Win32Exception) { }
            }
            process.Kill();
        }

        public async Task WaitForExitAsync(CancellationToken cancellationToken = default)
        {
            var exited = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            process.EnableRaisingEvents = true;
            process.Exited += (_, _) => exited.TrySetResult(true);
            if (process.HasExited) exited.TrySetResult(true);
            await exited.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            // Exited can fire before the redirected streams are drained; the parameterless wait covers that.
            process.WaitForExit();
        }
    }

    extension(StreamReader reader)
    {
        public async ValueTask<int> ReadAsync(Memory<char> buffer)
        {
            if (MemoryMarshal.TryGetArray<char>(buffer, out var segment))
                return await reader.ReadAsync(segment.Array!, segment.Offset, segment.Count).ConfigureAwait(false);
            var temporary = new char[buffer.Length];
            var read = await reader.ReadAsync(temporary, 0, temporary.Length).ConfigureAwait(false);
            temporary.AsSpan(0, read).CopyTo(buffer.Span);
            return read;
        }
    }

    extension(Task task)
    {
        /// <summary>await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing): waits, never throws.</summary>
        public ConfiguredTaskAwaitable ConfigureAwait(ConfigureAwaitOptions options) =>
            ((options & ConfigureAwaitOptions.SuppressThrowing) != 0
                ? task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default)
                : task).ConfigureAwait((options & ConfigureAwaitOptions.ContinueOnCapturedContext) != 0);

        public bool IsCompletedSuccessfully => task.Status == TaskStatus.RanToCompletion;
    }

    extension(Socket socket)
    {
        /// <summary>Receives into <paramref name="buffer"/> and writes the source into <paramref name="source"/>.</summary>
        public int ReceiveFrom(byte[] buffer, SocketFlags flags, SocketAddress source)
        {
            EndPoint any = source.Family == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
            var received = socket.ReceiveFrom(buffer, 0, buffer.Length, flags, ref any);
            var serialized = any.Serialize();
            for (var i = 0; i < serialized.Size && i < source.Size; i++) source[i] = serialized[i];
            return received;
        }

        public int SendTo(ReadOnlySpan<byte> datagram, SocketFlags flags, SocketAddress destination)
        {
            var template = destination.Family == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
            return socket.SendTo(datagram, flags, template.Create(destination));
        }

        /// <summary>Every data-channel packet passes here on .NET Framework: a pooled buffer, not an array per datagram.</summary>
        public int SendTo(ReadOnlySpan<byte> datagram, SocketFlags flags, EndPoint destination)
        {
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(datagram.Length);
            try
            {
                datagram.CopyTo(rented);
                return socket.SendTo(rented, 0, datagram.Length, flags, destination);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    extension(System.Net.WebSockets.WebSocket socket)
    {
        public async ValueTask<System.Net.WebSockets.ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(buffer, out var segment))
                throw new ArgumentException("the buffer must be array-backed", nameof(buffer));
            var result = await socket.ReceiveAsync(segment, cancellationToken).ConfigureAwait(false);
            return new System.Net.WebSockets.ValueWebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
        }

        public ValueTask SendAsync(ReadOnlyMemory<byte> buffer, System.Net.WebSockets.WebSocketMessageType type, bool endOfMessage, CancellationToken cancellationToken)
        {
            var segment = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(buffer, out var array) ? array : new ArraySegment<byte>(buffer.ToArray());
            return new ValueTask(socket.SendAsync(segment, type, endOfMessage, cancellationToken));
        }
    }

    extension(System.Net.Http.HttpContent content)
    {
        public Task<string> ReadAsStringAsync(CancellationToken cancellationToken) => content.ReadAsStringAsync().WaitAsync(cancellationToken);
    }

    extension(TcpListener listener)
    {
        /// <summary>Cancellation abandons the wait; the pending accept ends when the listener stops.</summary>
        public ValueTask<TcpClient> AcceptTcpClientAsync(CancellationToken cancellationToken) => new(listener.AcceptTcpClientAsync().WaitAsync(cancellationToken));
    }

    extension(Socket socket)
    {
        public ValueTask<SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, SocketFlags flags, EndPoint remote, CancellationToken cancellationToken)
        {
            System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(buffer, out var segment);
            return new ValueTask<SocketReceiveFromResult>(socket.ReceiveFromAsync(segment, flags, remote).WaitAsync(cancellationToken));
        }

        public ValueTask<int> SendToAsync(ReadOnlyMemory<byte> buffer, SocketFlags flags, EndPoint remote, CancellationToken cancellationToken)
        {
            var segment = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(buffer, out var array) ? array : new ArraySegment<byte>(buffer.ToArray());
            return new ValueTask<int>(socket.SendToAsync(segment, flags, remote).WaitAsync(cancellationToken));
        }
    }

    extension<T>(System.Threading.Channels.ChannelReader<T> reader)
    {
        public async IAsyncEnumerable<T> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item)) yield return item;
            }
        }
    }

    extension(Span<byte> span)
    {
        public ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> trimBytes)
        {
            ReadOnlySpan<byte> value = span;
            var start = 0;
            while (start < value.Length && trimBytes.IndexOf(value[start]) >= 0) start++;
            var end = value.Length;
            while (end > start && trimBytes.IndexOf(value[end - 1]) >= 0) end--;
            return value.Slice(start, end - start);
        }
    }

    extension<T>(IEnumerable<T> source)
    {
        public IEnumerable<T> TakeLast(int count)
        {
            var window = new Queue<T>(Math.Max(count, 0));
            if (count <= 0) return window;
            foreach (var item in source)
            {
                if (window.Count == count) window.Dequeue();
                window.Enqueue(item);
            }
            return window;
        }

        public T FirstOrDefault(Func<T, bool> predicate, T fallback)
        {
            foreach (var item in source) if (predicate(item)) return item;
            return fallback;
        }
    }
}

/// <summary>The Add side of ProcessStartInfo.ArgumentList: appends each argument to Arguments, quoted so the child sees it verbatim.</summary>
internal readonly struct ProcessArgumentList(System.Diagnostics.ProcessStartInfo start)
{
    public void Add(string argument)
    {
        var quoted = WindowsCommandLine.QuoteArgument(argument);
        start.Arguments = string.IsNullOrEmpty(start.Arguments) ? quoted : start.Arguments + " " + quoted;
    }
}
#endif
