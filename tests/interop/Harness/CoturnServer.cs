using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace SleapRtc.Interop;

/// <summary>
/// Debian's coturn (/usr/bin/turnserver) started for one test with a generated configuration: coturn's shared-secret
/// scheme (use-auth-secret + static-auth-secret), a realm, UDP/TCP and TLS listeners on the given addresses, a TLS
/// certificate issued for the test by a CA of its own (<see cref="CaCertificatePath"/>, the file a client must be told
/// to trust), and a relay port range. Optionally inside a network namespace (nsenter) so the topology decides who
/// reaches it. Disposal stops it and deletes its directory.
/// </summary>
public sealed class CoturnServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/turnserver";
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly string _directory;

    private CoturnServer(Process process, string directory, string secret, string realm, int port, int tlsPort, string caPath)
    {
        _process = process;
        _directory = directory;
        Secret = secret;
        Realm = realm;
        Port = port;
        TlsPort = tlsPort;
        CaCertificatePath = caPath;
    }

    public string Secret { get; }
    public string Realm { get; }
    /// <summary>UDP and TCP listening port.</summary>
    public int Port { get; }
    /// <summary>TLS listening port (turns:).</summary>
    public int TlsPort { get; }
    /// <summary>PEM of the CA that issued the server's certificate (what SLEAP_RTC_TURN_CA_FILE would name).</summary>
    public string CaCertificatePath { get; }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static bool IsInstalled => File.Exists(Binary);

    /// <param name="listenAddresses">Addresses coturn listens on (its certificate is issued for each of them).</param>
    /// <param name="relayAddress">Address relayed candidates get.</param>
    /// <param name="namedNetwork">Named network namespace (ip netns) to run in, with the standard ports 3478/5349; null: this
    /// one, on ports picked free here.</param>
    public static async Task<CoturnServer> StartAsync(IReadOnlyList<IPAddress> listenAddresses, IPAddress relayAddress, string? namedNetwork,
        TimeSpan readyTimeout, IReadOnlyList<string>? extraConfiguration = null)
    {
        if (!IsInstalled) throw new InvalidOperationException($"coturn is not installed ({Binary}); apt-get install coturn");
        var directory = Path.Combine(Path.GetTempPath(), "turn-coturn-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        const string realm = "sleaprtc.test";
        var port = namedNetwork is null ? FreePort() : 3478;
        var tlsPort = namedNetwork is null ? FreePort() : 5349;
        var relayBase = namedNetwork is null ? 49152 + RandomNumberGenerator.GetInt32(0, 14000) : 50000;
        var (caPath, certPath, keyPath) = WriteCertificates(directory, listenAddresses);
        var lines = new List<string>();
        foreach (var address in listenAddresses) lines.Add($"listening-ip={address}");
        lines.AddRange(new[]
        {
            $"listening-port={port}",
            $"tls-listening-port={tlsPort}",
            $"relay-ip={relayAddress}",
            $"min-port={relayBase}",
            $"max-port={relayBase + 200}",
            "use-auth-secret",
            $"static-auth-secret={secret}",
            $"realm={realm}",
            $"cert={certPath}",
            $"pkey={keyPath}",
            "no-cli",
            "no-dtls",
            "no-multicast-peers",
            "fingerprint",
            $"pidfile={Path.Combine(directory, "turnserver.pid")}",
            $"userdb={Path.Combine(directory, "turndb")}",
            "log-file=stdout",
            "simple-log",
            "verbose",
        });
        if (IPAddress.IsLoopback(relayAddress)) lines.Add("allow-loopback-peers");
        if (extraConfiguration is not null) lines.AddRange(extraConfiguration);
        var configPath = Path.Combine(directory, "turnserver.conf");
        await File.WriteAllLinesAsync(configPath, lines).ConfigureAwait(false);

        var (fileName, arguments) = namedNetwork is null
            ? (Binary, new[] { "-c", configPath })
            : ("/usr/sbin/ip", new[] { "netns", "exec", namedNetwork, Binary, "-c", configPath });
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start turnserver");
        var server = new CoturnServer(process, directory, secret, realm, port, tlsPort, caPath);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null || line.Contains("Protocol not supported", StringComparison.Ordinal)) return; // no SCTP in this kernel
            lock (server._log) server._log.AppendLine(line);
            // The last thing coturn logs at start-up is its admin thread, after every listener is open.
            if (line.Contains("IO method (admin thread)", StringComparison.Ordinal)) ready.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(readyTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException($"coturn did not start within {readyTimeout.TotalSeconds} s:\n{server.Log}");
        }
        // Listener threads open their sockets right after; a short settle beats a probe that cannot cross namespaces.
        await Task.Delay(150).ConfigureAwait(false);
        return server;
    }

    /// <summary>Time-limited credentials for <paramref name="name"/>, minted as the signaling server does.</summary>
    public (string Username, string Password) Credentials(string name, TimeSpan validFor) =>
        SleapRtc.WebRtc.Turn.TurnSharedSecret.CreateCredentials(Secret, name, DateTimeOffset.UtcNow + validFor);

    private static int FreePort()
    {
        // Free for both TCP and UDP at the time of asking.
        for (var attempt = 0; ; attempt++)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            try
            {
                using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) when (attempt < 20)
            {
            }
        }
    }

    private static (string Ca, string Cert, string Key) WriteCertificates(string directory, IReadOnlyList<IPAddress> addresses)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=SleapRtc test TURN CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=turn.sleaprtc.test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        foreach (var address in addresses) names.AddIpAddress(address);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid("1.3.6.1.5.5.7.3.1") }, false));
        using var leaf = request.Create(ca, now.AddMinutes(-5), now.AddDays(1), RandomNumberGenerator.GetBytes(8));

        var caPath = Path.Combine(directory, "ca.pem");
        var certPath = Path.Combine(directory, "cert.pem");
        var keyPath = Path.Combine(directory, "key.pem");
        File.WriteAllText(caPath, ca.ExportCertificatePem() + "\n");
        File.WriteAllText(certPath, leaf.ExportCertificatePem() + "\n");
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        return (caPath, certPath, keyPath);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
        }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
