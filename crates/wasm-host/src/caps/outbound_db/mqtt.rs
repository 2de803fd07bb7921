//! MQTT: `fermyon:spin/mqtt@2.0.0` (open and publish) over `wisp_outbound_db::mqtt`'s shared broker
//! connections.

use super::{DbView, Denied, v2};
use std::sync::Arc;
use v2::fermyon::spin::mqtt as q;
use wasmtime::component::Resource;
use wisp_core::outbound::Scheme;
use wisp_outbound_db::DbError;
use wisp_outbound_db::mqtt::{Broker, Qos, Target};

/// A guest's MQTT connection: a share of its owner's connection to the broker.
pub struct MqttHandle {
    broker: Arc<Broker>,
}

impl DbView<'_> {
    fn mqtt_err(&self, e: DbError) -> q::Error {
        match e {
            DbError::InvalidAddress(m) => {
                self.note(&format!("mqtt: {m}"));
                q::Error::InvalidAddress
            }
            DbError::TooManyConnections(m) => {
                self.note(&format!("mqtt: {m}"));
                q::Error::TooManyConnections
            }
            DbError::ConnectionFailed(m) => q::Error::ConnectionFailed(m),
            DbError::BadParameter(m)
            | DbError::ValueConversion(m)
            | DbError::TypeError(m)
            | DbError::Other(m)
            | DbError::QueryFailed { message: m, .. } => q::Error::Other(m),
        }
    }
}

impl q::Host for DbView<'_> {}

impl q::HostConnection for DbView<'_> {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<MqttHandle>, q::Error>> {
        let o = self.opening();
        let opened = async {
            let pools = o.pools()?;
            let target = Target::parse(&address)?;
            let (host, port) = target.endpoint();
            let addrs = o.checked(Scheme::Mqtt, &address, &[(host.to_string(), port)]).await?;
            let broker = pools
                .mqtt(
                    &o.owner,
                    &address,
                    &target,
                    &username,
                    &password,
                    keep_alive_interval_in_secs,
                    &addrs,
                    o.deadline,
                )
                .await?;
            Ok::<_, Denied>(broker)
        }
        .await;
        Ok(match opened {
            Ok(broker) => Ok(self.table.push(MqttHandle { broker })?),
            Err(Denied::Policy(m)) => Err(q::Error::ConnectionFailed(m)),
            Err(Denied::Db(e)) => Err(self.mqtt_err(e)),
        })
    }

    async fn publish(
        &mut self,
        conn: Resource<MqttHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: q::Qos,
    ) -> wasmtime::Result<Result<(), q::Error>> {
        let broker = self.table.get(&conn)?.broker.clone();
        let qos = match qos {
            q::Qos::AtMostOnce => Qos::AtMostOnce,
            q::Qos::AtLeastOnce => Qos::AtLeastOnce,
            q::Qos::ExactlyOnce => Qos::ExactlyOnce,
        };
        let deadline = self.deadline();
        self.count(payload.len());
        let out = crate::trace::host_call("mqtt", "mqtt publish", broker.publish(&topic, payload, qos, deadline)).await;
        Ok(out.map_err(|e| self.mqtt_err(e)))
    }

    async fn drop(&mut self, conn: Resource<MqttHandle>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
