using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// A real redis-server (Debian's /usr/bin/redis-server) on a free loopback port, without persistence, for one test class.
/// It can be stopped and started again on the same port (an outage, or a restart that lost everything).
/// Shared with tests/SleapRtc.Job.Tests (linked there), so it needs nothing but xunit.
/// </summary>
public sealed class RedisTestServer : IAsyncLifetime
{
    private Process? _process;

    public int Port { get; private set; }

    public string Url => $"redis://127.0.0.1:{Port}";

    public async Task InitializeAsync()
    {
        Port = FreePort();
        await StartAsync();
    }

    /// <summary>Starts (again) on <see cref="Port"/>, empty, and waits until it answers PING.</summary>
    public async Task StartAsync()
    {
        var info = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning" })
            info.ArgumentList.Add(arg);
        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (await PingAsync()) return;
            if (_process.HasExited) throw new InvalidOperationException($"redis-server exited with {_process.ExitCode} (port {Port} taken?)");
            await Task.Delay(50);
        }
        throw new TimeoutException("redis-server did not answer PING within 10 s");
    }

    /// <summary>Kills the server (SIGKILL: its data is gone, as after a crash without persistence).</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process) return;
        _process = null;
        if (!process.HasExited) process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
    }

    private async Task<bool> PingAsync() => await CommandAsync("PING") is { } answer && answer.StartsWith("+PONG", StringComparison.Ordinal);

    /// <summary>Empties Redis (each test of a class starts from nothing, as with a fresh single server).</summary>
    public async Task FlushAsync()
    {
        var answer = await CommandAsync("FLUSHALL");
        if (answer is null || !answer.StartsWith("+OK", StringComparison.Ordinal)) throw new InvalidOperationException("FLUSHALL failed: " + answer);
    }

    /// <summary>One inline command over a fresh connection; null when Redis does not answer.</summary>
    public async Task<string?> CommandAsync(string command)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(5000);
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"), timeout.Token);
            var buffer = new byte[4096];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public Task DisposeAsync() => StopAsync();
}
