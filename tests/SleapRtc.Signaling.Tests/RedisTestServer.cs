using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// A real redis-server (Debian's /usr/bin/redis-server) on a free loopback port, without persistence, for one test class.
/// It can be stopped and started again on the same port (an outage, or a restart that lost everything).
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

    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(1000);
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return false;
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

/// <summary>Several server instances sharing one Redis, each a real <see cref="TestServer"/> on its own port.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(IReadOnlyList<TestServer> instances) => Instances = instances;

    public IReadOnlyList<TestServer> Instances { get; }

    public TestServer this[int index] => Instances[index];

    public static async Task<TestCluster> StartAsync(RedisTestServer redis, int count, Action<SleapRtc.Signaling.Server.SignalingServerOptions>? configure = null)
    {
        var instances = new List<TestServer>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                instances.Add(await TestServer.StartAsync(options =>
                {
                    options.Redis = redis.Url;
                    options.ClusterHeartbeatInterval = TimeSpan.FromMilliseconds(300);
                    options.ClusterPresenceTtl = TimeSpan.FromSeconds(2);
                    configure?.Invoke(options);
                }));
            }
            return new TestCluster(instances);
        }
        catch
        {
            foreach (var instance in instances) await instance.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var instance in Instances) await instance.DisposeAsync();
    }
}
