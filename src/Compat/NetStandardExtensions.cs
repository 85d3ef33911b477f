#if !NET8_0_OR_GREATER
using System.Runtime.InteropServices;

namespace SleapRtc.Compat;

/// <summary>
/// Instance members of newer BCL types our code calls, as extensions for the netstandard2.0 build. On net8.0 the
/// runtime's own members exist and this file is not compiled.
/// </summary>
internal static class NetStandardExtensions
{
    public static void Deconstruct<TKey, TValue>(this KeyValuePair<TKey, TValue> pair, out TKey key, out TValue value)
    {
        key = pair.Key;
        value = pair.Value;
    }

    public static bool StartsWith(this string text, char value) => text.Length > 0 && text[0] == value;
    public static bool EndsWith(this string text, char value) => text.Length > 0 && text[text.Length - 1] == value;
    public static bool Contains(this string text, char value) => text.IndexOf(value) >= 0;
    public static bool Contains(this string text, string value, StringComparison comparison) => text.IndexOf(value, comparison) >= 0;
    public static int IndexOf(this string text, char value, StringComparison comparison) =>
        comparison == StringComparison.Ordinal ? text.IndexOf(value) : text.IndexOf(value.ToString(), comparison);
    public static bool Contains(this string text, char value, StringComparison comparison) => text.IndexOf(value, comparison) >= 0;

    public static long NextInt64(this Random random)
    {
        var bytes = new byte[8];
        random.NextBytes(bytes);
        return BitConverter.ToInt64(bytes, 0) & long.MaxValue;
    }

    public static string[] Split(this string text, char separator, StringSplitOptions options) => text.Split(new[] { separator }, options);
    public static string[] Split(this string text, char separator, int count, StringSplitOptions options = StringSplitOptions.None) => text.Split(new[] { separator }, count, options);
    public static string[] Split(this string text, string separator, StringSplitOptions options = StringSplitOptions.None) => text.Split(new[] { separator }, options);
    public static string Replace(this string text, string oldValue, string? newValue, StringComparison comparison)
    {
        if (comparison == StringComparison.Ordinal) return text.Replace(oldValue, newValue);
        var result = new System.Text.StringBuilder();
        var start = 0;
        int index;
        while ((index = text.IndexOf(oldValue, start, comparison)) >= 0)
        {
            result.Append(text, start, index - start).Append(newValue);
            start = index + oldValue.Length;
        }
        return result.Append(text, start, text.Length - start).ToString();
    }

    public static bool TryAdd<TKey, TValue>(this IDictionary<TKey, TValue> dictionary, TKey key, TValue value) where TKey : notnull
    {
        if (dictionary.ContainsKey(key)) return false;
        dictionary.Add(key, value);
        return true;
    }

    public static TValue? GetValueOrDefault<TKey, TValue>(this IReadOnlyDictionary<TKey, TValue> dictionary, TKey key) =>
        dictionary.TryGetValue(key, out var value) ? value : default;

    public static TValue GetValueOrDefault<TKey, TValue>(this IReadOnlyDictionary<TKey, TValue> dictionary, TKey key, TValue fallback) =>
        dictionary.TryGetValue(key, out var value) ? value : fallback;

    public static bool Remove<TKey, TValue>(this Dictionary<TKey, TValue> dictionary, TKey key, out TValue value) where TKey : notnull
    {
        if (!dictionary.TryGetValue(key, out value!)) return false;
        dictionary.Remove(key);
        return true;
    }

    public static bool TryDequeue<T>(this Queue<T> queue, out T value)
    {
        if (queue.Count == 0) { value = default!; return false; }
        value = queue.Dequeue();
        return true;
    }

    public static bool TryPeek<T>(this Queue<T> queue, out T value)
    {
        if (queue.Count == 0) { value = default!; return false; }
        value = queue.Peek();
        return true;
    }

    public static Task CancelAsync(this CancellationTokenSource source)
    {
        source.Cancel();
        return Task.CompletedTask;
    }

    public static async Task<int> ReadAsync(this Stream stream, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (MemoryMarshal.TryGetArray<byte>(buffer, out var segment))
            return await stream.ReadAsync(segment.Array!, segment.Offset, segment.Count, cancellationToken).ConfigureAwait(false);
        var rented = new byte[buffer.Length];
        var read = await stream.ReadAsync(rented, 0, rented.Length, cancellationToken).ConfigureAwait(false);
        rented.AsSpan(0, read).CopyTo(buffer.Span);
        return read;
    }

    public static Task WriteAsync(this Stream stream, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (MemoryMarshal.TryGetArray(buffer, out var segment))
            return stream.WriteAsync(segment.Array!, segment.Offset, segment.Count, cancellationToken);
        var copy = buffer.ToArray();
        return stream.WriteAsync(copy, 0, copy.Length, cancellationToken);
    }

    public static void Write(this Stream stream, ReadOnlySpan<byte> buffer)
    {
        var copy = buffer.ToArray();
        stream.Write(copy, 0, copy.Length);
    }

    public static int Read(this Stream stream, Span<byte> buffer)
    {
        var copy = new byte[buffer.Length];
        var read = stream.Read(copy, 0, copy.Length);
        copy.AsSpan(0, read).CopyTo(buffer);
        return read;
    }

    public static Task WaitAsync(this Task task, CancellationToken cancellationToken) =>
        task.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken);

    public static Task WaitAsync(this Task task, TimeSpan timeout) => task.WaitAsync(timeout, CancellationToken.None);

    public static async Task WaitAsync(this Task task, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (task.IsCompleted) { await task.ConfigureAwait(false); return; }
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(timeout, cancel.Token);
        var winner = await Task.WhenAny(task, delay).ConfigureAwait(false);
        if (winner == task)
        {
            cancel.Cancel();
            await task.ConfigureAwait(false);
            return;
        }
        // The abandoned task may still fault (a socket closed under it); observe that so it is never unobserved.
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        cancellationToken.ThrowIfCancellationRequested();
        throw new TimeoutException();
    }

    public static Task<T> WaitAsync<T>(this Task<T> task, CancellationToken cancellationToken) =>
        task.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken);

    public static Task<T> WaitAsync<T>(this Task<T> task, TimeSpan timeout) => task.WaitAsync(timeout, CancellationToken.None);

    public static async Task<T> WaitAsync<T>(this Task<T> task, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await ((Task)task).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        return await task.ConfigureAwait(false);
    }

    public static IEnumerable<T[]> Chunk<T>(this IEnumerable<T> source, int size)
    {
        var chunk = new List<T>(size);
        foreach (var item in source)
        {
            chunk.Add(item);
            if (chunk.Count == size) { yield return chunk.ToArray(); chunk.Clear(); }
        }
        if (chunk.Count > 0) yield return chunk.ToArray();
    }

    public static HashSet<T> ToHashSet<T>(this IEnumerable<T> source, IEqualityComparer<T>? comparer = null) => new(source, comparer);
}
#endif
