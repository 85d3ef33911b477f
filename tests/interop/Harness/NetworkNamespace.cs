using System.Diagnostics;

namespace SleapRtc.Interop;

/// <summary>
/// A private network namespace (lo + veth 10.99.0.1/10.99.0.2, black-hole default route) that fixtures join
/// with nsenter, so every interop packet stays inside it. Created by tests/interop/netns.sh; needs root.
/// The namespace lives as long as the holder process, which exits when this object closes its stdin.
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

    public static async Task<NetworkNamespace> CreateAsync(TimeSpan timeout)
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

    public async ValueTask DisposeAsync()
    {
        try { _holder.StandardInput.Close(); } catch (IOException) { }
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await _holder.WaitForExitAsync(grace.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { _holder.Kill(entireProcessTree: true); }
        _holder.Dispose();
    }
}
