"""A throwaway PKI for the TLS tests, made with the openssl command line:
a CA, certificates it signs (server and client use, 127.0.0.1 in the
subject alternative names), and a second CA nobody trusts."""
import os
import subprocess


def _run(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class CA:
    def __init__(self, directory, name):
        self.dir = directory
        self.name = name
        self.key = os.path.join(directory, name + "-ca.key")
        self.cert = os.path.join(directory, name + "-ca.pem")
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name + " CA")
        self.serial = 0

    def issue(self, cn):
        """A key and a certificate for @cn signed by this CA: (cert, key)."""
        self.serial += 1
        base = os.path.join(self.dir, "%s-%s" % (self.name, cn))
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "basicConstraints=CA:FALSE\n")
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn)
        _run("x509", "-req", "-in", base + ".csr", "-CA", self.cert, "-CAkey", self.key,
             "-set_serial", str(self.serial), "-days", "2", "-extfile", ext,
             "-out", base + ".pem")
        os.chmod(base + ".key", 0o600)
        return base + ".pem", base + ".key"
