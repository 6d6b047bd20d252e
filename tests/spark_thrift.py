"""A throwaway Spark Thrift server for the tests (`[spark] method = "thrift"`).

A pyspark process (`local[2]`) that serves its session over Thrift (HiveThriftServer2, which
pyspark's jars include) on a free port of 127.0.0.1, with its tables and Derby catalog in a
folder the test shares with loanwatch, as a team's server shares its warehouse directory.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

SERVER = """
import sys
from pyspark.sql import SparkSession
warehouse, port = sys.argv[1], sys.argv[2]
spark = (SparkSession.builder.master("local[2]").appName("thrift-server")
         .config("spark.sql.warehouse.dir", warehouse)
         .config("spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={warehouse}/metastore_db;create=true")
         .config("spark.driver.extraJavaOptions", f"-Dderby.stream.error.file={warehouse}/derby.log")  # not the cwd
         .config("spark.hadoop.hive.server2.thrift.port", port)
         .config("spark.hadoop.hive.server2.thrift.bind.host", "127.0.0.1")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "4")  # (Spark's default, 200, is for a cluster)
         .config("spark.sql.legacy.createHiveTableByDefault", "false")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .enableHiveSupport().getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
# Spark 4's Hive jars lack hive-llap-common: now and then closing a session asks Hive for its
# function registry, whose class cannot load (NoClassDefFoundError: LlapSigner$Signable), the
# close fails (the node's work done, dbt calls it an error: CI, 2026-12-06), and Hive's flag
# "functions registered" stays pending, so the next one would wait forever. Spark never uses that
# registry (it asks Hive for a client without it): marked registered, it is never loaded. A
# team's server takes the jars instead (docs/engines.md, Thrift server).
jvm = spark.sparkContext._jvm
registered = jvm.java.lang.Class.forName("org.apache.hadoop.hive.ql.metadata.Hive").getDeclaredField("didRegisterAllFuncs")
registered.setAccessible(True)
handles = jvm.java.lang.invoke.MethodHandles  # (the AtomicInteger set in the JVM: Py4J returns it as an int)
set_to = handles.lookup().findVirtual(jvm.java.lang.Class.forName("java.util.concurrent.atomic.AtomicInteger"), "set",
                                      jvm.java.lang.invoke.MethodType.methodType(jvm.java.lang.Void.TYPE, jvm.java.lang.Integer.TYPE))
done = jvm.java.util.ArrayList()
done.add(2)  # Hive.REG_FUNCS_DONE
handles.collectArguments(set_to, 0, handles.lookup().unreflectGetter(registered)).invokeWithArguments(done)
assert registered.get(None) == 2
jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(spark._jsparkSession.sqlContext())
print("ready", flush=True)
sys.stdin.read()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_thrift_server(warehouse: Path, timeout: float = 180):
    """Start the server; returns ({host, port, warehouse_dir}, stop)."""
    warehouse.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(warehouse / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(warehouse), str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True)

    def stop() -> None:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()  # "ready", once the server listens
    if line.strip() != "ready":
        stop()
        raise RuntimeError(f"the Thrift server did not start: {(warehouse / 'server.log').read_text()[-2000:]}")
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return {"host": "127.0.0.1", "port": port, "warehouse_dir": str(warehouse)}, stop
        time.sleep(0.2)
    stop()
    raise RuntimeError(f"the Thrift server never listened on {port}")
