using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SleapRtc.Interop;

/// <summary>
/// A private network namespace (lo + veth 10.99.0.1/10.99.0.2, black-hole default route) that fixtures join
/// with nsenter, so every interop packet stays inside it. Created by tests/interop/netns.sh; needs root.
/// The namespace lives as long as the holder process, which exits when this object closes its stdin.
/// With <c>oneAddress</c> it has 10.99.0.1 as its only address besides lo (<see cref="OnlyAddress"/>), for a peer that
/// sits behind the impairment relay: the relay latches one source per side, so the peer must send from one address.
/// </summary>
public sealed class NetworkNamespace : IAsyncDisposable
{
    private readonly Process _holder;
    private readonly int _holderPid;

    private NetworkNamespace(Process holder, int holderPid)
    {
        _holder = holder;
        _holderPid = holderPid;
    }

    /// <summary>The namespace's address when created with <c>oneAddress</c>.</summary>
    public static System.Net.IPAddress OnlyAddress { get; } = System.Net.IPAddress.Parse("10.99.0.1");

    public static async Task<NetworkNamespace> CreateAsync(TimeSpan timeout, bool oneAddress = false)
    {
        var script = Path.Combine(FixtureCatalog.InteropDirectory, "netns.sh");
        if (!File.Exists(script)) throw new FixtureUnavailableException($"network namespace helper missing: {script}");
        if (!File.Exists("/usr/bin/nsenter")) throw new FixtureUnavailableException("nsenter (util-linux) is not installed");
        var info = new ProcessStartInfo("bash")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add("hold");
        if (oneAddress) info.ArgumentList.Add("one-address");
        var holder = Process.Start(info) ?? throw new FixtureUnavailableException("could not start netns.sh");
        using var cts = new CancellationTokenSource(timeout);
        string? line;
        try
        {
            line = await holder.StandardOutput.ReadLineAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            holder.Kill(entireProcessTree: true);
            throw new FixtureUnavailableException($"network namespace not ready within {timeout.TotalSeconds} s");
        }
        if (line is null || !line.StartsWith("ready ", StringComparison.Ordinal))
        {
            var stderr = await holder.StandardError.ReadToEndAsync(cts.Token).ConfigureAwait(false);
            holder.Kill(entireProcessTree: true);
            throw new FixtureUnavailableException($"cannot create a private network namespace (root and iproute2 needed): {stderr.Trim()}");
        }
        return new NetworkNamespace(holder, int.Parse(line.AsSpan(6), System.Globalization.CultureInfo.InvariantCulture));
    }

    public (string FileName, IReadOnlyList<string> Arguments) Wrap(FixtureCommand command)
    {
        var arguments = new List<string> { $"--net=/proc/{_holderPid}/ns/net", "--", command.FileName };
        arguments.AddRange(command.Arguments);
        return ("/usr/bin/nsenter", arguments);
    }

    /// <summary>
    /// Runs <paramref name="create"/> on a short-lived thread that has joined this namespace (setns), so sockets it
    /// creates live in the namespace while this process stays outside it: an in-process relay can bridge two namespaces.
    /// </summary>
    public T RunInside<T>(Func<T> create)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/proc/{_holderPid}/ns/net");
                if (SetNamespace((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new FixtureUnavailableException($"setns into the test namespace failed (errno {Marshal.GetLastPInvokeError()}; root needed)");
                result = create();
            }
            catch (Exception error) { failure = error; }
        }) { IsBackground = true, Name = "netns-enter" };
        // The thread ends with it, so no pool thread is ever left inside the namespace.
        thread.Start();
        thread.Join();
        if (failure is not null) throw failure;
        return result!;
    }

    private const int CloneNewNet = 0x40000000;

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNamespace(int fd, int nstype);

    public async ValueTask DisposeAsync()
    {
        try { _holder.StandardInput.Close(); } catch (IOException) { }
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await _holder.WaitForExitAsync(grace.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { _holder.Kill(entireProcessTree: true); }
        _holder.Dispose();
    }
}
