#!/bin/bash
# The Kafka broker of docker-compose.yml, configured like the one `nova up` runs
# (nova/kafka/launcher.py): SASL on every listener (SCRAM-SHA-512 for clients, PLAIN with the
# admin password between the broker and its KRaft controller, which cannot check SCRAM), the
# StandardAuthorizer, nothing allowed without an ACL, and nova-admin the only super user. The
# principals' SCRAM credentials are written into the metadata when the storage is formatted,
# once; `nova kafka provision` (the kafka-init service) then creates the topics and ACLs.
set -euo pipefail
for var in KAFKA_ADMIN_PASSWORD KAFKA_GATEWAY_PASSWORD KAFKA_WORKER_PASSWORD KAFKA_TOOLS_PASSWORD; do
  [[ -n "${!var:-}" ]] || { echo "kafka: $var is not set" >&2; exit 2; }
  [[ "${!var}" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "kafka: $var: use [A-Za-z0-9_-] only" >&2; exit 2; }
done
umask 077
home=${KAFKA_HOME:-/opt/kafka}      # the apache/kafka image's layout, overridable to try it elsewhere
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
host=${KAFKA_SERVICE_HOST:-kafka}   # the compose service's name
conf=${KAFKA_CONF_DIR:-/tmp/nova-kafka}
mkdir -p "$conf"
scram="org.apache.kafka.common.security.scram.ScramLoginModule required"
plain="org.apache.kafka.common.security.plain.PlainLoginModule required"
admin="username=\"nova-admin\" password=\"$KAFKA_ADMIN_PASSWORD\""

cat > "$conf/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:9093
listeners=INTERNAL://:9092,CONTROLLER://:9093,HOST://:29092
advertised.listeners=INTERNAL://$host:9092,HOST://localhost:29092
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=$scram $admin;
listener.name.host.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.host.scram-sha-512.sasl.jaas.config=$scram;
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain $admin user_nova-admin="$KAFKA_ADMIN_PASSWORD";
sasl.mechanism.controller.protocol=PLAIN
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:nova-admin
allow.everyone.if.no.acl.found=false
log.dirs=$data
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES

# For the healthcheck (kafka-broker-api-versions.sh --command-config).
cat > "$conf/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$scram $admin;
PROPERTIES

if [[ ! -f "$data/meta.properties" ]]; then
  "$home/bin/kafka-storage.sh" format -c "$conf/server.properties" \
    -t "$("$home/bin/kafka-storage.sh" random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=nova-admin,password=$KAFKA_ADMIN_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=nova-gateway,password=$KAFKA_GATEWAY_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=nova-worker,password=$KAFKA_WORKER_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=nova-tools,password=$KAFKA_TOOLS_PASSWORD]"
fi
exec "$home/bin/kafka-server-start.sh" "$conf/server.properties"
