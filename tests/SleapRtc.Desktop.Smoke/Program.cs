using System;
using System.IO;
using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace SleapRtc.Desktop.Smoke;

/// <summary>
/// Modes (every line the caller parses starts with an upper-case tag):
///   all-in-one MODULE_BIN WORK_DIR PACKAGE SLEAP_NN   server + worker + client in this process
///   worker     MODULE_BIN SERVER_URL WORK_DIR SLEAP_NN prints "SESSION s", serves until stdin closes
///   submit     MODULE_BIN SESSION PACKAGE OUT_DIR      submits to a worker, prints "RESULT ..."
/// Exit code 0 on success; failures print "ERROR ..." and exit 1.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            var moduleBin = args[1];
            // What Windows PowerShell does on Import-Module: load the cmdlet assembly, run its module initializer.
            var cmdlets = Assembly.LoadFrom(Path.Combine(moduleBin, "SleapRtc.dll"));
            RuntimeHelpers.RunModuleConstructor(cmdlets.ManifestModule.ModuleHandle);
            Console.WriteLine("RUNTIME " + System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);
            var mode = args[0];
            var task = mode switch
            {
                "all-in-one" => Scenarios.AllInOneAsync(args[2], args[3], args[4]),
                "worker" => Scenarios.WorkerAsync(args[2], args[3], args[4]),
                "submit" => Scenarios.SubmitAsync(args[2], args[3], args[4]),
                _ => throw new ArgumentException("unknown mode " + mode),
            };
            if (!task.Wait(TimeSpan.FromMinutes(3))) throw new TimeoutException("the scenario did not finish in 3 minutes");
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine("ERROR " + e.ToString().Replace(Environment.NewLine, " | "));
            return 1;
        }
    }
}
